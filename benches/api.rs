//! The request API of `labsync watch --http --tokens` end to end (issue 14): the real binaries,
//! `labsync sim serve` in its own process and `labsync watch` serving the API, driven over HTTP
//! on loopback by this bench.
//!
//! - `ready`: API request → lab `ready` at the simulator's realistic timing (time scale 1), the
//!   same burst as `benches/readiness.rs` (20 labs × 5 VMs, one `POST /api/v1/labs` every 3 s),
//!   without a warm pool and with `pool: { ready: 20 }` filled before the first request. A lab
//!   is ready at the first `GET /api/v1/labs` (every 250 ms) that shows it `ready`.
//! - `burst`: 100 `POST /api/v1/labs` at once from 10 clients (10 threads per token, released
//!   together), at time scale 0: each request's latency (connect → whole answer), then how long
//!   until all 100 labs are ready.
//!
//! `cargo bench --bench api --profile dev`; `LABSYNC_BENCH_RUNS=ready0,ready20,burst` picks the
//! runs. Timing is reported, never asserted; the figures go in BENCHMARKS.md.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{BIN, BenchError, Reaped, labs_yaml, percentile, start_sim};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Labs requested in the `ready` runs, one request every [`GAP`].
const LABS: usize = 20;
const GAP: Duration = Duration::from_secs(3);
/// How often the `ready` runs ask for the labs.
const POLL: Duration = Duration::from_millis(250);
/// The `burst` run: clients × requests per client, all at once.
const CLIENTS: usize = 10;
const PER_CLIENT: usize = 10;

/// One HTTP/1.1 exchange: the status and the JSON body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> Result<(u16, Value), BenchError> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status")?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn token(client: usize) -> String {
    format!("bench-token-{client}")
}

/// Clients `c0`…`c9` with scopes read and request, and a rate no burst here reaches.
fn tokens_toml() -> String {
    (0..CLIENTS)
        .map(|i| {
            let hash: String = Sha256::digest(token(i).as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!(
                "[[client]]\nname = \"c{i}\"\ntoken_sha256 = \"{hash}\"\n\
                 scopes = [\"read\", \"request\"]\nper_minute = 6000\n"
            )
        })
        .collect()
}

/// `labsync watch --http` on a fresh simulator at `time_scale`, with a pool of `pool` spares;
/// returns once the API answers after the first look.
fn start(dir: &Path, time_scale: &str, pool: usize) -> Result<(Reaped, Reaped, u16), BenchError> {
    std::fs::create_dir_all(dir.join("labs.d/api"))?;
    let (sim, url) = start_sim(dir, time_scale)?;
    std::fs::write(
        dir.join("labs.yaml"),
        labs_yaml(&url, pool, "requests:\n  api_dir: labs.d/api\n"),
    )?;
    std::fs::write(dir.join("tokens.toml"), tokens_toml())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let watch = Reaped(
        Command::new(BIN)
            .args(["watch", "-f", "labs.yaml", "--interval", "10m"])
            .args([
                "--tokens",
                "tokens.toml",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join("xdg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let end = Instant::now() + Duration::from_secs(60);
    while !matches!(
        http(port, "GET", "/api/v1/labs", &token(0), b""),
        Ok((200, _))
    ) {
        if Instant::now() > end {
            return Err("the API did not answer within a minute".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((sim, watch, port))
}

/// Each lab's state now.
fn states(port: u16) -> Result<BTreeMap<String, String>, BenchError> {
    let (_, v) = http(port, "GET", "/api/v1/labs", &token(0), b"")?;
    Ok(v["labs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["name"].as_str()?.into(), l["state"].as_str()?.into())))
        .collect())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "median {:.1} s, p95 {:.1} s, min {:.1} s, max {:.1} s",
        secs(percentile(sorted, 0.5)),
        secs(percentile(sorted, 0.95)),
        secs(sorted.first().copied().unwrap_or_default()),
        secs(sorted.last().copied().unwrap_or_default()),
    )
}

fn request(id: &str) -> Vec<u8> {
    json!({ "request_id": id, "template": "five", "name": id, "ttl": "8h" })
        .to_string()
        .into_bytes()
}

/// API request → lab `ready`, one request every 3 s, with a warm pool of `pool` (0: none).
fn ready_run(pool: usize) -> Result<(), BenchError> {
    let tmp = tempfile::tempdir()?;
    let (_sim, _watch, port) = start(tmp.path(), "1", pool)?;
    let filling = Instant::now();
    if pool > 0 {
        let end = filling + Duration::from_secs(900);
        loop {
            let (_, v) = http(port, "GET", "/api/v1/pools", &token(0), b"")?;
            if v["pools"][0]["ready"].as_u64().unwrap_or(0) >= pool as u64 {
                break;
            }
            if Instant::now() > end {
                return Err("the pool did not fill in 15 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let filled = filling.elapsed();
    let begin = Instant::now();
    let mut asked: Vec<(String, Instant)> = Vec::new();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut answered: Vec<Duration> = Vec::new();
    let mut ready: BTreeMap<String, Instant> = BTreeMap::new();
    let mut next = begin;
    let deadline = begin + Duration::from_secs(600);
    while ready.len() < LABS && Instant::now() < deadline {
        while asked.len() < LABS && Instant::now() >= next {
            let id = format!("api-{:02}", asked.len());
            let at = Instant::now();
            let (code, v) = http(port, "POST", "/api/v1/labs", &token(0), &request(&id))?;
            answered.push(at.elapsed());
            if code != 201 {
                return Err(format!("POST {id}: {code} {v}").into());
            }
            let state = v["state"].as_str().unwrap_or("?").to_string();
            *answers.entry(state).or_default() += 1;
            asked.push((id, at));
            next += GAP;
        }
        let polled = Instant::now();
        for (lab, state) in states(port)? {
            if state == "ready" && asked.iter().any(|(a, _)| *a == lab) {
                ready.entry(lab).or_insert(polled);
            }
        }
        std::thread::sleep(POLL.saturating_sub(polled.elapsed()));
    }
    let mut took: Vec<Duration> = asked
        .iter()
        .filter_map(|(lab, at)| Some(ready.get(lab)?.saturating_duration_since(*at)))
        .collect();
    took.sort();
    answered.sort();
    let mode = match pool {
        0 => "no warm pool".to_string(),
        n => format!(
            "warm pool of {n} (filled and ready in {:.1} s first)",
            secs(filled)
        ),
    };
    println!("{LABS} labs x 5 VMs, one POST /api/v1/labs every 3 s, time scale 1, {mode}:");
    println!(
        "  API request -> lab ready: {} ({} of {LABS} ready)",
        summary(&took),
        took.len()
    );
    println!(
        "  the POST's own answer: median {:.1} ms, max {:.1} ms; states answered: {answers:?}",
        percentile(&answered, 0.5).as_secs_f64() * 1e3,
        answered.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}

/// 100 requests at once from 10 clients: each one's latency, then all 100 ready.
fn burst_run() -> Result<(), BenchError> {
    let tmp = tempfile::tempdir()?;
    let (_sim, _watch, port) = start(tmp.path(), "0", 0)?;
    let gate = Arc::new(Barrier::new(CLIENTS * PER_CLIENT));
    let begin = Instant::now();
    let threads: Vec<_> = (0..CLIENTS * PER_CLIENT)
        .map(|i| {
            let gate = gate.clone();
            std::thread::spawn(move || -> Result<(Duration, u16), String> {
                let body = request(&format!("burst-{i:03}"));
                gate.wait();
                let at = Instant::now();
                let (code, _) = http(port, "POST", "/api/v1/labs", &token(i % CLIENTS), &body)
                    .map_err(|e| e.to_string())?;
                Ok((at.elapsed(), code))
            })
        })
        .collect();
    let mut took = Vec::new();
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for t in threads {
        let (d, code) = t.join().map_err(|_| "a client thread panicked")??;
        took.push(d);
        *codes.entry(code).or_default() += 1;
    }
    let all_answered = begin.elapsed();
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} POST /api/v1/labs at once from {CLIENTS} clients, time scale 0:",
        CLIENTS * PER_CLIENT
    );
    println!(
        "  latency: median {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, min {:.0} ms, max {:.0} ms; \
         all answered after {:.0} ms; answers {codes:?}",
        ms(percentile(&took, 0.5)),
        ms(percentile(&took, 0.95)),
        ms(percentile(&took, 0.99)),
        ms(took.first().copied().unwrap_or_default()),
        ms(took.last().copied().unwrap_or_default()),
        ms(all_answered),
    );
    let end = Instant::now() + Duration::from_secs(900);
    loop {
        let ready = states(port)?
            .iter()
            .filter(|(lab, state)| lab.starts_with("burst-") && *state == "ready")
            .count();
        if ready == CLIENTS * PER_CLIENT {
            break;
        }
        if Instant::now() > end {
            return Err(format!("only {ready} labs ready after 15 minutes").into());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "  all {} labs (500 VMs) ready {:.1} s after the burst began",
        CLIENTS * PER_CLIENT,
        secs(begin.elapsed())
    );
    Ok(())
}

fn main() -> Result<(), BenchError> {
    let runs = std::env::var("LABSYNC_BENCH_RUNS").unwrap_or("ready0,ready20,burst".into());
    for run in runs.split(',').map(str::trim) {
        match run {
            "burst" => burst_run()?,
            r => match r.strip_prefix("ready").map(str::parse::<usize>) {
                Some(Ok(pool)) => ready_run(pool)?,
                _ => return Err(format!("unknown run `{r}` (ready0, ready20, burst)").into()),
            },
        }
    }
    Ok(())
}
