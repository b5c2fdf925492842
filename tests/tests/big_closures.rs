//! Closures of any size run as coroutines: one that captures a large value
//! by value (an array of several KiB) is spawned, run and joined like a
//! small one, whether it is the main coroutine, a spawned one or a scope's
//! child.

const BIG: usize = 64 * 1024;

fn filled(n: usize) -> [u8; BIG] {
    let mut data = [0u8; BIG];
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = (i * n % 251) as u8;
    }
    data
}

fn sum(data: &[u8]) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

#[test]
fn a_main_coroutine_capturing_a_large_array_runs() {
    let data = filled(3);
    let expected = sum(&data);
    let got = green::Builder::new().stack_size(1 << 20).run(move || sum(&data));
    assert_eq!(got, expected);
}

#[test]
fn spawned_coroutines_capturing_large_arrays_run() {
    let got = green::Builder::new().stack_size(1 << 20).run(|| {
        let handles: Vec<_> = (1..=4)
            .map(|n| {
                let data = Box::new(filled(n));
                let data = *data;
                green::task::Builder::new().stack_size(1 << 20).spawn(move || sum(&data)).expect("spawned")
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("ran")).sum::<u64>()
    });
    assert_eq!(got, (1..=4).map(|n| sum(&filled(n))).sum::<u64>());
}

#[test]
fn a_scope_child_capturing_a_large_array_runs() {
    let got = green::Builder::new().stack_size(1 << 20).run(|| {
        let data = filled(5);
        green::scope(|s| {
            let child = s.spawn(move || Ok::<u64, std::io::Error>(sum(&data)));
            child.join().expect("ran")
        })
        .expect("no failure")
    });
    assert_eq!(got, sum(&filled(5)));
}

#[test]
fn a_large_closure_cancelled_before_it_starts_is_dropped() {
    let counter = green_tests::DropCounter::new();
    green::run(|| {
        let token = counter.token();
        let data = [7u8; 4096];
        let handle = green::spawn(move || {
            let _token = token;
            sum(&data)
        });
        handle.cancel();
        assert!(handle.join().unwrap_err().is_cancelled());
    });
    assert_eq!(counter.dropped(), 1);
}
