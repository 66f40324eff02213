//! The metrics as an operator meets them: a live `pinbook serve` (with a subscriber and an
//! admin call, so the control plane's metrics have data) whose scrape passes
//! `promtool check metrics`, scraped by a real Prometheus that then evaluates every expression
//! of the Grafana dashboard (`dashboards/pinbook.json`) the way Grafana would send it. A
//! renamed or missing metric fails here, not on someone's screen.
//!
//! Needs `prometheus` and `promtool` on the PATH (`apt-get install prometheus`;
//! `scripts/test` installs them through `scripts/deps --test`).

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::{Server, eventually, ok, tail};

/// What the test substitutes for `$__rate_interval`: five 1 s scrapes.
const RATE_INTERVAL: &str = "5s";
/// How many scrapes Prometheus must have made before the dashboard's queries run.
const SCRAPES: f64 = 10.0;

/// A child process, killed and reaped when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn dashboards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

fn dashboard() -> Value {
    let path = dashboards().join("pinbook.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `(panel title, expr)` of every query target of every panel.
fn exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("a target of panel {title:?} has no expr: {target}"));
            out.push((title.to_owned(), expr.to_owned()));
        }
    }
    out
}

/// Replaces Grafana variables (`$name`, `${name}`, `${name:format}`, `[[name]]`) with their
/// values; a variable without one is a dashboard bug.
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let value = |name: &str| -> &str {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("`{expr}` uses ${name}, which the test does not know"))
    };
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(inner) = rest.strip_prefix("${") {
            let end = inner.find('}').expect("an unclosed ${");
            let name = inner[..end].split(':').next().unwrap_or_default();
            out.push_str(value(name));
            rest = &inner[end + 1..];
        } else if let Some(inner) = rest.strip_prefix("[[") {
            let end = inner.find("]]").expect("an unclosed [[");
            out.push_str(value(inner[..end].split(':').next().unwrap_or_default()));
            rest = &inner[end + 2..];
        } else if let Some(inner) = rest.strip_prefix('$') {
            let end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            assert!(end > 0, "a lone `$` in `{expr}`");
            out.push_str(value(&inner[..end]));
            rest = &inner[end..];
        } else {
            out.push('[');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn dashboard_is_file_provisionable() {
    let d = dashboard();
    assert_eq!(d["uid"], "pinbook-overview");
    assert!(
        d.get("__inputs").is_none(),
        "an exported dashboard's __inputs cannot be file-provisioned; use the datasource variable"
    );
    let vars = d["templating"]["list"]
        .as_array()
        .expect("template variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` template variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("shard")["multi"], true);
    assert_eq!(var("shard")["includeAll"], true);
    let ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    for v in [var("instance"), var("shard")] {
        assert_eq!(v["datasource"], ds, "variable {}", v["name"]);
    }
    let all = panels(&d);
    assert!(
        all.iter().any(|p| p["type"] == "row"),
        "panels grouped in rows"
    );
    for panel in all.iter().filter(|p| p["type"] != "row") {
        let title = &panel["title"];
        assert_eq!(panel["datasource"], ds, "panel {title}");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"], ds, "a target of panel {title}");
        }
        if panel["type"] != "table" {
            assert!(
                panel["fieldConfig"]["defaults"]["unit"].is_string(),
                "panel {title} has no unit"
            );
        }
    }
    // every variable an expression uses is one Grafana defines
    let vars = [
        ("instance", "x"),
        ("shard", "x"),
        ("__rate_interval", "x"),
        ("__interval", "x"),
    ];
    for (_, expr) in exprs(&d) {
        substitute(&expr, &vars);
    }
}

/// Fails with how to install `tool` if it is not on the PATH.
fn require(tool: &str) {
    if let Err(e) = Command::new(tool).arg("--version").output() {
        panic!(
            "`{tool}` cannot run ({e}). Install Prometheus and promtool: \
             `sudo apt-get install prometheus` (or `scripts/deps --test`)"
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// GET `url` with `query`; the status and the body, whatever the status.
fn get(agent: &ureq::Agent, url: &str, query: &[(&str, &str)]) -> (u16, String) {
    let mut request = agent.get(url);
    for (k, v) in query {
        request = request.query(*k, *v);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
    (status, body)
}

/// The `data` of a Prometheus API answer, or the reason there is none.
fn api(agent: &ureq::Agent, url: &str, query: &[(&str, &str)]) -> Result<Value, String> {
    let (status, body) = get(agent, url, query);
    let json: Value = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if json["status"] != "success" {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(json["data"].clone())
}

/// Prometheus scraping `target` every second, its API on `127.0.0.1:port`, ready.
fn prometheus(dir: &Path, target: &str, agent: &ureq::Agent) -> (Guard, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pinbook\n    static_configs:\n      \
             - targets: [\"{target}\"]\n"
        ),
    )
    .expect("write prometheus.yml");
    let log = dir.join("prometheus.log");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("start prometheus");
    let mut child = Guard(child);
    let base = format!("http://127.0.0.1:{port}");
    eventually("prometheus is ready", Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("prometheus exited ({status}); its log:\n{}", tail(&log));
        }
        match agent.get(format!("{base}/-/ready")).call() {
            Ok(r) if r.status() == 200 => Ok(()),
            Ok(r) => Err(format!("HTTP {}; its log:\n{}", r.status(), tail(&log))),
            Err(e) => Err(format!("{e}; its log:\n{}", tail(&log))),
        }
    });
    (child, base)
}

/// The first value of an instant vector, if any.
fn scalar(data: &Value) -> Option<f64> {
    data["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn metrics_pass_promtool_and_feed_every_dashboard_query() {
    require("prometheus");
    require("promtool");
    let agent = http();
    let dir = tempfile::tempdir().expect("a temporary directory for Prometheus");

    // the Prometheus configuration the README points at is valid
    let out = Command::new("promtool")
        .arg("check")
        .arg("config")
        .arg(dashboards().join("prometheus.yml"))
        .output()
        .expect("run promtool check config");
    assert!(
        out.status.success(),
        "dashboards/prometheus.yml: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Server::start();
    server.wait_serving(&[]);
    let metrics = server.metrics.clone();
    // no --seconds: the subscriber must outlive the queries below; the guard ends it
    let _subscriber = Guard(
        server
            .command(&["subscribe", "AAPL", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pinbook subscribe"),
    );
    ok(&server.admin(&["symbols", "list"]), "symbols list");
    // calls refused by a handler and by the token check are counted as well as answers
    let missing = server
        .command(&["book", "NOPE"])
        .output()
        .expect("run pinbook book");
    assert!(!missing.status.success(), "book NOPE must fail");
    let refused = server
        .command(&["stats"])
        .env("PINBOOK_ADMIN_TOKEN", "not-the-token")
        .output()
        .expect("run pinbook stats");
    assert!(!refused.status.success(), "a wrong token must be refused");

    // Prometheus scrapes for ~10 s
    let (_prometheus, prom) = prometheus(dir.path(), &metrics, &agent);
    let query = format!("{prom}/api/v1/query");
    let scrapes = format!("count_over_time(up{{job=\"pinbook\",instance=\"{metrics}\"}}[1m])");
    eventually(
        &format!("Prometheus scraped pinbook {SCRAPES} times"),
        Duration::from_secs(40),
        || {
            let up = api(&agent, &query, &[("query", "up")]).expect("query up");
            let done = api(&agent, &query, &[("query", &scrapes)]).expect("count scrapes");
            if scalar(&up) == Some(1.0) && scalar(&done).is_some_and(|n| n >= SCRAPES) {
                return Ok(());
            }
            Err(format!(
                "up = {up}, scrapes = {done}; targets: {}",
                get(&agent, &format!("{prom}/api/v1/targets"), &[]).1
            ))
        },
    );

    // the scrape itself passes promtool's checks and lint, silently
    let (status, body) = get(&agent, &format!("http://{metrics}/metrics"), &[]);
    assert_eq!(status, 200, "GET /metrics: {body}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool check metrics");
    promtool
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(body.as_bytes())
        .expect("pipe the scrape to promtool");
    let out = promtool.wait_with_output().expect("promtool check metrics");
    for (method, code, exactly) in [
        ("pinbook.v2.AdminService/ListSymbols", "OK", Some(1)),
        ("pinbook.v2.BookService/GetBook", "NOT_FOUND", Some(1)),
        (
            "pinbook.v2.AdminService/GetStats",
            "PERMISSION_DENIED",
            Some(1),
        ),
        ("pinbook.v2.BookService/Subscribe", "OK", Some(1)),
        ("pinbook.v2.BookService/GetBook", "OK", None),
    ] {
        let series = format!("pinbook_grpc_requests_total{{method=\"{method}\",code=\"{code}\"}} ");
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series}in the scrape:\n{body}"));
        if let Some(n) = exactly {
            assert_eq!(value.trim(), n.to_string(), "{series}");
        }
    }
    assert!(
        !body.contains("grpc.health") && !body.contains("ServerReflection"),
        "only pinbook.v2 calls are counted"
    );
    let said: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && said.is_empty(),
        "promtool check metrics ({}) on the scrape of /metrics:\n{}",
        out.status,
        said.join("\n")
    );

    // every dashboard query returns data, its variables set the way Grafana sets them
    let d = dashboard();
    let vars = [
        ("instance", metrics.as_str()),
        ("shard", ".*"),
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", "2s"),
    ];
    let mut failures = Vec::new();
    let all = exprs(&d);
    assert!(all.len() >= 20, "only {} dashboard queries", all.len());
    for (title, expr) in &all {
        let promql = substitute(expr, &vars);
        match api(&agent, &query, &[("query", &promql)]) {
            Ok(data) if data["result"].as_array().is_some_and(|r| !r.is_empty()) => {}
            Ok(data) => failures.push(format!(
                "panel {title:?}: no data for\n  {promql}\n  {data}"
            )),
            Err(why) => failures.push(format!("panel {title:?}: {promql}\n  {why}")),
        }
    }
    // the template variables' own queries: label_values(selector, label)
    let variables: Vec<&Value> = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["definition"].is_string())
        .collect();
    for v in &variables {
        let definition = v["definition"].as_str().unwrap_or_default();
        let args = definition
            .strip_prefix("label_values(")
            .and_then(|a| a.strip_suffix(')'))
            .and_then(|a| a.rsplit_once(','))
            .unwrap_or_else(|| panic!("variable {}: not label_values(…): {definition}", v["name"]));
        let (selector, label) = (substitute(args.0.trim(), &vars), args.1.trim());
        let url = format!("{prom}/api/v1/label/{label}/values");
        match api(&agent, &url, &[("match[]", &selector)]) {
            Ok(data) if data.as_array().is_some_and(|r| !r.is_empty()) => {}
            Ok(data) => failures.push(format!(
                "variable {}: no values: {definition} {data}",
                v["name"]
            )),
            Err(why) => failures.push(format!("variable {}: {definition}\n  {why}", v["name"])),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries fail against a live pinbook:\n{}",
        failures.len(),
        all.len() + variables.len(),
        failures.join("\n")
    );
}
