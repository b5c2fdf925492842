//! The I/O budget: a coroutine whose socket always has data ready never
//! hits `EAGAIN` and so never parks; the runtime makes it yield every so
//! many operations, so the other coroutines of its worker still run.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;

use green::net::UnixStream;

/// Bytes waiting in the socket before the reader starts: far more one-byte
/// reads than the budget allows between two yields.
const READY: usize = 48 * 1024;

#[test]
fn a_reader_that_never_waits_still_lets_the_others_run() {
    let (read_before_ticks, ticks) = green::run(|| {
        let (mut reader, mut writer) = UnixStream::pair().expect("a socket pair");
        writer.write_all(&vec![7u8; READY]).expect("the data fits in the socket's buffer");
        let ticks = Rc::new(Cell::new(0u32));
        let ticked = ticks.clone();
        let ticker = green::spawn(move || {
            for _ in 0..10 {
                ticked.set(ticked.get() + 1);
                green::yield_now();
            }
        });
        // One byte at a time, every read completes at once; it stops when
        // the ticker has finished, or when the data runs out.
        let mut read = 0;
        let mut byte = [0u8; 1];
        while read < READY && ticks.get() < 10 {
            read += reader.read(&mut byte).expect("a read of data that is there");
        }
        ticker.join().expect("the ticker");
        drop(writer);
        (read, ticks.get())
    });
    assert_eq!(ticks, 10);
    assert!(
        read_before_ticks < READY / 2,
        "the reader read {read_before_ticks} of {READY} bytes before the ticker could finish"
    );
}
