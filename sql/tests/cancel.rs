//! Ctrl-C cancels the running query: by SIGINT to a script run, and by the Ctrl-C key in the
//! interactive shell through a real pty (util-linux `script`), where the shell prompts again.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Fixture, sql_binary};

/// A query that would run for hours: aggregating a trillion generated rows.
const LONG_QUERY: &str = "SELECT max(value % 7) AS m FROM range(1000000000000);";

/// Collects everything a child writes to a pipe, for polling.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<String>>);

impl Collected {
    fn spawn(mut pipe: impl Read + Send + 'static) -> Collected {
        let collected = Collected::default();
        let sink = collected.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.0
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        collected
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `needle` appears after byte `from`; returns the end of the match.
    fn wait_for(&self, needle: &str, from: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|t| t.find(needle)) {
                return from + at + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; output so far:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the shell did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_cancels_a_running_script_query() {
    let fixture = Fixture::new();
    let mut child = Command::new(sql_binary())
        .arg("--catalog")
        .arg(fixture.path())
        .args(["--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = Collected::spawn(child.stdout.take().unwrap());
    let stderr = Collected::spawn(child.stderr.take().unwrap());
    // Once this answer is out, the shell (and its SIGINT handler) is up.
    writeln!(stdin, "SELECT 1 AS ready;").unwrap();
    stdout.wait_for("ready\n1\n", 0);
    writeln!(stdin, "{LONG_QUERY}\nSELECT 2 AS after;").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)),
        Some(1),
        "stderr: {}",
        stderr.text()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(stderr.text(), "sql: stdin:2: query cancelled\n");
    assert_eq!(
        stdout.text(),
        "ready\n1\n",
        "the script stops at the cancelled statement"
    );
}

#[test]
fn ctrl_c_in_the_interactive_shell_returns_to_the_prompt() {
    let fixture = Fixture::new();
    let history = fixture.path().join("history.txt");
    // `exec` so that the pty's foreground process is the shell itself, not `sh -c`.
    let command = format!(
        "exec '{}' --catalog '{}' --history '{}'",
        sql_binary().display(),
        fixture.path().display(),
        history.display()
    );
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the shell in a pty");
    let mut keys = Keys(child.stdin.take().unwrap());
    let screen = Collected::spawn(child.stdout.take().unwrap());

    let at = screen.wait_for("sql> ", 0);
    keys.line("SELECT 41 + 1 AS answer;");
    let at = screen.wait_for("| 42     |", at);
    let at = screen.wait_for("sql> ", at);

    keys.line(LONG_QUERY);
    std::thread::sleep(Duration::from_millis(800));
    keys.ctrl_c();
    let at = screen.wait_for("query cancelled", at);
    let at = screen.wait_for("sql> ", at);

    // A syntax error is reported with its position and the shell goes on.
    keys.line("SELEC 1;");
    let at = screen.wait_for(
        "syntax error at line 1, column 1: Expected: an SQL statement, found: SELEC",
        at,
    );
    let at = screen.wait_for("sql> ", at);

    // A statement over two lines, then quit.
    keys.line("SELECT 'still' ||");
    let at = screen.wait_for("...> ", at);
    keys.line("' here' AS s;");
    screen.wait_for("| still here |", at);
    keys.line("\\q");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)),
        Some(0),
        "screen:\n{}",
        screen.text()
    );
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.contains("SELECT 41 + 1 AS answer;") && saved.contains("\\q"),
        "{saved}"
    );
}

/// The keyboard of the pty that `script` runs the shell in.
struct Keys(std::process::ChildStdin);

impl Keys {
    /// Types `line` and Enter (a carriage return, as a raw-mode terminal sends it).
    fn line(&mut self, line: &str) {
        self.0.write_all(format!("{line}\r").as_bytes()).unwrap();
        self.0.flush().unwrap();
    }

    /// Types Ctrl-C (ETX): with the query running the terminal is in cooked mode and turns it into
    /// SIGINT for the shell.
    fn ctrl_c(&mut self) {
        self.0.write_all(b"\x03").unwrap();
        self.0.flush().unwrap();
    }
}
