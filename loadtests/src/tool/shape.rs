//! A constrained downlink for one simulated subscriber: `tc` htb on `lo` limits what is
//! sent to that subscriber's UDP port (a queue of 30 packets, then drops: a narrow
//! access link, as the browser test `e2e/simulcast.mjs` builds it). Needs root in the
//! benchmark's network namespace (`loadtests/run.sh` runs the tool under `unshare -n`).

use std::process::Command;

/// The shaping of one port; removed when dropped.
pub struct Shaper {
    port: u16,
}

fn tc(args: &[&str]) -> Result<(), String> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .map_err(|e| format!("tc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Shaper {
    /// Limits what goes to UDP port `port` on loopback to `kbit` kbit/s.
    pub fn limit(port: u16, kbit: u32) -> Result<Shaper, String> {
        let _ = tc(&["qdisc", "del", "dev", "lo", "root"]);
        let rate = format!("{kbit}kbit");
        let port_s = port.to_string();
        tc(&[
            "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20",
        ])?;
        let shaper = Shaper { port };
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", &rate,
            "ceil", &rate, "burst", "15k",
        ])?;
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", "10gbit",
        ])?;
        tc(&[
            "qdisc", "add", "dev", "lo", "parent", "1:10", "handle", "10:", "pfifo", "limit", "30",
        ])?;
        tc(&[
            "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "u32", "match", "ip",
            "protocol", "17", "0xff", "match", "ip", "dport", &port_s, "0xffff", "flowid", "1:10",
        ])?;
        Ok(shaper)
    }

    /// The shaped port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        let _ = tc(&["qdisc", "del", "dev", "lo", "root"]);
    }
}
