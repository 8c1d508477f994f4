mod common;
use bg96_sim::Profile;
use common::*;

#[test]
fn boots_and_answers_at() {
    let mut t = T::booted(fast(Profile::Field));
    t.cmd("AT", "\r\nOK\r\n");
    t.cmd("ATE0", "\r\nOK\r\n");
    t.echo = false;
    t.cmd("AT", "\r\nOK\r\n");
    t.cmd("ATI", "\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A08M1G\r\n\r\nOK\r\n");
}
