//! What the benchmarks share: their command line (flags with values, only under `cargo bench`), a
//! repeatable random generator, percentiles of timings, child processes that die with the
//! benchmark, the hub (`hub.rs`), the SCIM targets (`target.rs`), the seeding of the directory (`seed.rs`) and a private OpenLDAP
//! server (the tests' `slapd.rs`).

#![allow(dead_code)]

pub mod hub;
pub mod seed;
/// The tests' private OpenLDAP server (slapd), for the LDAP benchmark.
#[path = "../../tests/common/slapd.rs"]
pub mod slapd;
pub mod target;

/// The name the slapd harness gives [`die_with_bench`].
pub use die_with_bench as tied_to_test;

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The `--flag value` pairs a benchmark was started with, or `None` when `cargo test
/// --all-targets` started it (without `--bench`): then there is nothing to measure, and the
/// benchmark says how to run it.
pub fn flags(bench: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("{bench} benchmark: run it with `cargo bench --bench {bench}`");
        return Ok(None);
    }
    let mut pairs = Vec::new();
    let mut iter = args.into_iter().filter(|a| a != "--bench");
    while let Some(flag) = iter.next() {
        if !flag.starts_with("--") {
            return Err(format!("unexpected argument {flag}"));
        }
        let value = iter.next().ok_or(format!("{flag} needs a value"))?;
        pairs.push((flag, value));
    }
    Ok(Some(pairs))
}

/// A flag's value as a count (zero allowed).
pub fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .map_err(|e| format!("{flag} needs a number, not {value} ({e})"))
}

/// A flag's value as a positive count.
pub fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive integer, not {value}")),
    }
}

/// The error for a flag the benchmark does not know.
pub fn unknown(flag: &str) -> Result<(), String> {
    Err(format!("unknown option {flag}"))
}

/// Runs a benchmark's option parser: exits with status 2 and the message on a bad command line,
/// returns `None` when there is nothing to measure (see [`flags`]).
pub fn parse_or_exit<T>(parsed: Result<Option<T>, String>) -> Option<T> {
    match parsed {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    }
}

/// A small deterministic generator (xorshift), so that runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The median, the `high` percentile and the maximum of `samples` (not empty).
pub fn percentiles(mut samples: Vec<f64>, high: f64) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize];
    (at(50.0), at(high), samples[samples.len() - 1])
}

/// The peak resident set size of process `pid` in KiB (`VmHWM` in `/proc/PID/status`), when
/// the system reports it.
#[allow(dead_code)] // Not every benchmark that shares this module measures memory.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads a child's output on a thread, so that a chatty child never blocks on a full pipe.
pub fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut output = String::new();
        let _ = pipe.read_to_string(&mut output);
        output
    })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Makes a child process die with the benchmark, so that no hub or referee outlives it.
pub fn die_with_bench(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
