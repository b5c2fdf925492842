//! The debugger script (`runtime/green-gdb.py`), driven in gdb's batch
//! mode against `gdb_target` (two workers, a coroutine parked in a channel
//! receive, one asleep on the other worker): `green tasks` lists every
//! coroutine with where it waits, `green bt` shows a parked coroutine's
//! own stack and a running one's thread, in a live process and in core
//! dumps; bad arguments and programs not built on green get one clear
//! line.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use green_tests::describe;

/// The program under the debugger.
const TARGET: &str = env!("CARGO_BIN_EXE_gdb_target");

/// The script.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/green-gdb.py")
}

/// gdb in batch mode, with the script, running `commands` against `args`
/// (a program, and perhaps its core); its output, once it has exited
/// (with success, unless a command is expected to fail).
fn gdb(commands: &[&str], args: &[&str], env: &[(&str, &str)]) -> String {
    run_gdb(commands, args, env, true)
}

/// [`gdb`], where a command may fail (then gdb's status is not success).
fn run_gdb(commands: &[&str], args: &[&str], env: &[(&str, &str)], succeed: bool) -> String {
    let mut gdb = Command::new("gdb");
    gdb.args(["-batch", "-nx", "-x"]).arg(script());
    for command in commands {
        gdb.args(["-ex", command]);
    }
    gdb.args(args);
    for (key, value) in env {
        gdb.env(key, value);
    }
    let output: Output = gdb.output().unwrap_or_else(|err| {
        panic!("cannot run gdb ({err}): install it (`apt-get install gdb`; .ci/run does)")
    });
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!text.contains("Python Exception"), "the script failed:\n{text}");
    assert!(!text.contains("Traceback"), "the script failed:\n{text}");
    assert!(output.status.success() || !succeed, "{}\n{text}", describe(&output));
    text
}

/// The lines of `text` from the one starting `coroutine N 'name'` to the
/// next such header or the end.
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let header = format!("'{name}' (runtime");
    let start = text.find(&header).unwrap_or_else(|| panic!("no backtrace of {name}:\n{text}"));
    let rest = &text[start + header.len()..];
    let end = rest.find("\ncoroutine ").map_or(rest.len(), |at| at);
    &text[start..start + header.len() + end]
}

/// What `green tasks` and `green bt` must show of the target, stopped.
fn check_listing_and_backtraces(text: &str) {
    let row = |name: &str| {
        text.lines()
            .find(|line| line.split_whitespace().nth(4) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in green tasks:\n{text}"))
    };
    let waiter = row("waiter");
    assert!(waiter.contains("parked") && waiter.contains("waits_for_the_debugger"), "{waiter}\n{text}");
    let sleeper = row("sleeper");
    assert!(sleeper.contains("parked") && sleeper.contains("sleeps_for_the_debugger"), "{sleeper}\n{text}");
    assert_eq!(sleeper.split_whitespace().nth(2), Some("1"), "the sleeper is on worker 1: {sleeper}");
    assert!(row("main").contains("running on thread"), "{text}");
    assert!(text.contains("coroutines\n"), "the count closes the list:\n{text}");

    let waiter = section(text, "waiter");
    assert!(waiter.contains("parked"), "{waiter}");
    for frame in ["waits_for_the_debugger", "Receiver::recv", "green::park::suspend"] {
        assert!(waiter.contains(frame), "{frame} in the waiter's backtrace:\n{waiter}");
    }
    assert!(waiter.contains("tests/src/bin/gdb_target.rs:"), "with its source line:\n{waiter}");
    assert!(!waiter.contains("gdb_target::main\n"), "only the coroutine's own stack:\n{waiter}");
    let sleeper = section(text, "sleeper");
    assert!(
        sleeper.contains("sleeps_for_the_debugger") && sleeper.contains("green::time::sleep"),
        "{sleeper}"
    );
    let main = section(text, "main");
    assert!(
        main.contains("running") && main.contains("raise"),
        "the running thread's own backtrace:\n{main}"
    );
}

const COMMANDS: [&str; 4] = ["green tasks", "green bt waiter", "green bt sleeper", "green bt main"];

#[test]
fn gdb_lists_the_coroutines_of_a_live_process_and_unwinds_a_parked_one() {
    let mut commands = vec!["run"];
    commands.extend(COMMANDS);
    commands.push("kill");
    let text = gdb(&commands, &[TARGET], &[]);
    check_listing_and_backtraces(&text);
}

#[test]
fn gdb_reads_the_coroutines_of_a_core_dump() {
    let dir = std::env::temp_dir().join(format!("green-gdb-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let core = dir.join("target.core");
    let core = core.to_str().expect("a UTF-8 path");
    // gdb's own `gcore` cannot read past guard regions (madvise guards
    // fail reads through /proc/PID/mem): the target uses guard pages.
    let generate = format!("generate-core-file {core}");
    gdb(&["run", &generate, "kill"], &[TARGET], &[("GDB_TARGET_GUARD_PAGES", "1")]);
    let text = gdb(&COMMANDS, &[TARGET, core], &[]);
    check_listing_and_backtraces(&text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gdb_reads_a_core_the_kernel_wrote() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    // Cores go to a program (systemd-coredump, apport), not to a file in
    // the working directory: nothing to read here; the gcore test covers
    // core files.
    if pattern.trim_start().starts_with('|') || pattern.contains('/') {
        eprintln!("core_pattern is {pattern:?}: the kernel writes no core file here to read");
        return;
    }
    let dir = std::env::temp_dir().join(format!("green-gdb-kcore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    // Exit status 97: the hard limit forbids core files.
    let status = Command::new("sh")
        .args(["-c", "ulimit -c unlimited || exit 97; exec \"$0\"", TARGET])
        .current_dir(&dir)
        .status()
        .expect("the target runs");
    if status.code() == Some(97) {
        eprintln!("the hard RLIMIT_CORE forbids core files here: the kernel writes none to read");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    assert_eq!(status.signal(), Some(libc::SIGTRAP), "SIGTRAP ends the target: {status}");
    let core = std::fs::read_dir(&dir)
        .expect("readable")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("core")))
        .unwrap_or_else(|| panic!("no core in {} (core_pattern {pattern:?})", dir.display()));
    let text = gdb(&COMMANDS, &[TARGET, core.to_str().expect("a UTF-8 path")], &[]);
    check_listing_and_backtraces(&text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_and_other_programs_get_one_clear_line() {
    let mut commands = vec!["run"];
    commands.extend(["green bt 999999999", "green bt", "green bt nobody", "green tasks"]);
    commands.push("kill");
    let text = run_gdb(&commands, &[TARGET], &[], false);
    assert!(text.contains("green: no coroutine 999999999"), "{text}");
    assert!(text.contains("usage: green bt ID"), "{text}");
    assert!(text.contains("green: no coroutine nobody"), "{text}");
    assert!(text.contains("id runtime worker"), "the commands go on after an error:\n{text}");
    let text = run_gdb(&["starti", "green tasks", "kill"], &["/bin/true"], &[], false);
    assert!(text.contains("no GREEN_DEBUG_ROOT in this program"), "{text}");
}
