//! A child test process killed with SIGKILL once it has acknowledged enough work: the
//! shared half of the queue's crash tests (`queue.rs`, `crash.rs`).
//!
//! The child prints one line `@@ack KEY CREATED` per task it made durable (marked,
//! because libtest may have written part of a line of its own before it).

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// Reads `child`'s acknowledgements until it has printed `acks` of them (or `patience`
/// passed without a new one), waits `extra` more, kills it with SIGKILL and reaps it.
/// Returns how it ended and every acknowledgement it printed in whole, as
/// `(key, created)`. `child`'s stdout must be piped.
pub(crate) fn kill_after_acks(
    mut child: Child,
    acks: usize,
    patience: Duration,
    extra: Duration,
) -> (ExitStatus, Vec<(String, bool)>) {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut acked = Vec::new();
        let mut line = String::new();
        // Only whole lines count: a line cut by the kill was not an acknowledgement.
        while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
            let ack = line.find("@@ack ").map(|at| &line[at + 6..]);
            if let Some(rest) = ack.and_then(|r| r.strip_suffix('\n')) {
                let (key, created) = rest.split_once(' ').expect("ack line");
                acked.push((key.to_owned(), created == "true"));
                let _ = tx.send(());
            }
            line.clear();
        }
        acked
    });
    for _ in 0..acks {
        if rx.recv_timeout(patience).is_err() {
            break;
        }
    }
    std::thread::sleep(extra);
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap");
    (status, reader.join().expect("reader"))
}
