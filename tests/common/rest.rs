//! Two security servers set up for REST: ss2 hosts DRACS's REST services in front of the
//! registry simulator's `/echo` and `/status` routes, ss1 hosts DIIA (X-Road headers or UXP,
//! detected), OTHER (no rights) and UXP (a client configured for the UXP dialect).

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

pub const DIIA: &str = "SEVDEIR-TEST/GOV/00000001/DIIA";
pub const OTHER: &str = "SEVDEIR-TEST/GOV/00000009/OTHER";
pub const PROVIDER: &str = "/r1/SEVDEIR-TEST/GOV/00000002/DRACS";

/// `limits` goes into ss1's `[limits]` section, `extra` at its end.
pub fn ss1_rest_toml(limits: &str, extra: &str) -> String {
    let toml = node_toml(
        "ss1",
        "00000001",
        "globalconf",
        &format!(
            r#"
[[clients]]
id = "SEVDEIR-TEST/GOV/00000001/DIIA"

[[clients]]
id = "SEVDEIR-TEST/GOV/00000009/OTHER"
rest_dialect = "xroad"
{extra}
"#
        ),
    );
    toml.replacen("[limits]\n", &format!("[limits]\n{limits}\n"), 1)
}

pub fn ss2_rest_toml(sim: SocketAddr, dead: SocketAddr, extra: &str) -> String {
    node_toml(
        "ss2",
        "00000002",
        "globalconf",
        &format!(
            r#"
[[clients]]
id = "SEVDEIR-TEST/GOV/00000002/DRACS"

[[clients.services]]
code = "echo"
type = "rest"
url = "http://{sim}/echo"
timeout_ms = 20000
endpoints = [{{ method = "GET", path = "/allowed/*" }}]

[[clients.services]]
code = "status"
type = "rest"
url = "http://{sim}/status"

[[clients.services]]
code = "dead"
type = "rest"
url = "http://{dead}/nobody"
timeout_ms = 1000

[[clients.services]]
code = "getBirthRecord"
version = "v1"
url = "http://{sim}/dracs"

[[clients.access]]
service = "echo"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]

[[clients.access]]
service = "echo"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000009/OTHER"]
method = "GET"
path = "/allowed/*"

[[clients.access]]
service = "status"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]

[[clients.access]]
service = "dead"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]

[[clients.access]]
service = "getBirthRecord"
subjects = ["SUBSYSTEM:SEVDEIR-TEST/GOV/00000001/DIIA"]
{extra}
"#
        ),
    )
}

/// Starts the simulator, ss2 and ss1; `ss1_limits` goes into ss1's `[limits]`, `ss1_extra` and
/// `ss2_extra` at the end of their TOML (`{sim}` in `ss2_extra` becomes the simulator's address).
pub async fn start_rest_pair(ss1_limits: &str, ss1_extra: &str, ss2_extra: &str) -> Pair {
    let mut net = TwoServers::new();
    let sim = start_sim(Duration::ZERO).await;
    let dead = bind().local_addr().unwrap();
    let dir = net.path();
    let ss2_listener = std::mem::replace(&mut net.ss2_server, bind());
    let ss1_listener = std::mem::replace(&mut net.ss1_server, bind());
    let ss2 = start_node(
        &dir,
        "ss2",
        &ss2_rest_toml(
            sim.addr,
            dead,
            &ss2_extra.replace("{sim}", &sim.addr.to_string()),
        ),
        Some(ss2_listener),
    )
    .await;
    let ss1 = start_node(
        &dir,
        "ss1",
        &ss1_rest_toml(ss1_limits, ss1_extra),
        Some(ss1_listener),
    )
    .await;
    Pair { net, ss1, ss2, sim }
}
