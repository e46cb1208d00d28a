//! SDP text the core reads or adjusts around rtc: the local ICE credentials (for the
//! demultiplexer), the first mid (for candidate events), `a=msid-semantic` (non-browser
//! stacks ignore `a=msid` without it) and host candidates rewritten to the announced
//! addresses (rtc knows only the socket's address).

use std::net::SocketAddr;

/// The first `a=ice-ufrag:` and `a=ice-pwd:` of an SDP (rtc bundles: one transport).
pub(crate) fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let mut ufrag = None;
    let mut pwd = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if ufrag.is_none() {
            ufrag = line.strip_prefix("a=ice-ufrag:");
        }
        if pwd.is_none() {
            pwd = line.strip_prefix("a=ice-pwd:");
        }
        if let (Some(u), Some(p)) = (ufrag, pwd) {
            return Some((u.to_owned(), p.to_owned()));
        }
    }
    None
}

/// The first `a=mid:` of an SDP: the bundle's transport section, where candidates go.
pub(crate) fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .map(str::to_owned)
}

/// `sdp` with a session-level `a=msid-semantic: WMS *` if it has none (rtc writes it only
/// into descriptions made after a remote one, so a first offer lacks it).
pub(crate) fn with_msid_semantic(sdp: &str) -> String {
    if sdp.lines().any(|l| l.starts_with("a=msid-semantic")) {
        return sdp.to_owned();
    }
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len() + 32);
    let mut inserted = false;
    for line in sdp.split_inclusive('\n') {
        if !inserted && line.starts_with("m=") {
            out.push_str("a=msid-semantic: WMS *");
            out.push_str(eol);
            inserted = true;
        }
        out.push_str(line);
    }
    if !inserted {
        if !out.ends_with('\n') && !out.is_empty() {
            out.push_str(eol);
        }
        out.push_str("a=msid-semantic: WMS *");
        out.push_str(eol);
    }
    out
}

/// The candidate lines to announce for one candidate of the connection (`candidate:...`,
/// with or without `a=`): a host candidate on `local` becomes one line per announced
/// address (distinct foundations); anything else is kept as it is.
pub(crate) fn announced_candidates(
    line: &str,
    local: SocketAddr,
    announced: &[SocketAddr],
) -> Vec<String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let on_local = fields.len() >= 8
        && fields[6] == "typ"
        && fields[7] == "host"
        && fields[4].parse().ok() == Some(local.ip())
        && fields[5].parse().ok() == Some(local.port());
    if !on_local || announced.is_empty() || announced == [local] {
        return vec![line.to_owned()];
    }
    announced
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let mut f: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
            if i > 0 {
                f[0] = format!("{}{i}", f[0]);
            }
            f[4] = addr.ip().to_string();
            f[5] = addr.port().to_string();
            f.join(" ")
        })
        .collect()
}

/// `sdp` with its host candidates on `local` replaced by the announced addresses.
pub(crate) fn with_announced_candidates(
    sdp: &str,
    local: SocketAddr,
    announced: &[SocketAddr],
) -> String {
    if announced.is_empty() || announced == [local] || !sdp.contains("a=candidate:") {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len() + 64 * announced.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        if body.starts_with("a=candidate:") {
            let eol = &line[body.len()..];
            for l in announced_candidates(body, local, announced) {
                out.push_str(&l);
                out.push_str(if eol.is_empty() { "\r\n" } else { eol });
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecret\r\n\
        a=mid:0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 3478 typ host\r\n\
        a=candidate:2 1 udp 1694498815 198.51.100.1 50000 typ srflx raddr 10.0.0.5 rport 3478\r\n";

    fn local() -> SocketAddr {
        "10.0.0.5:3478".parse().unwrap()
    }

    #[test]
    fn reads_credentials_and_mid() {
        assert_eq!(
            ice_credentials(OFFER),
            Some(("abcd".to_owned(), "secretsecretsecret".to_owned()))
        );
        assert_eq!(first_mid(OFFER).as_deref(), Some("0"));
        assert_eq!(ice_credentials("v=0\r\n"), None);
    }

    #[test]
    fn adds_msid_semantic_once_at_session_level() {
        let out = with_msid_semantic(OFFER);
        let at = out.find("a=msid-semantic: WMS *\r\n").expect("inserted");
        assert!(
            at < out.find("m=video").unwrap(),
            "before the first media section"
        );
        assert_eq!(with_msid_semantic(&out), out, "not twice");
        let rtc_style = "v=0\r\na=msid-semantic:WMS *\r\nm=audio 9 x 111\r\n";
        assert_eq!(with_msid_semantic(rtc_style), rtc_style);
    }

    #[test]
    fn host_candidates_become_the_announced_addresses() {
        let public: Vec<SocketAddr> = vec![
            "203.0.113.7:3478".parse().unwrap(),
            "203.0.113.8:4000".parse().unwrap(),
        ];
        let c = "candidate:1 1 udp 2130706431 10.0.0.5 3478 typ host";
        assert_eq!(
            announced_candidates(c, local(), &public),
            vec![
                "candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host".to_owned(),
                "candidate:11 1 udp 2130706431 203.0.113.8 4000 typ host".to_owned(),
            ]
        );
        assert_eq!(
            announced_candidates(c, local(), &[local()]),
            vec![c.to_owned()]
        );
        let out = with_announced_candidates(OFFER, local(), &public);
        assert!(out.contains("a=candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host\r\n"));
        assert!(out.contains("a=candidate:11 1 udp 2130706431 203.0.113.8 4000 typ host\r\n"));
        assert!(out.contains("typ srflx raddr 10.0.0.5"), "non-host kept");
        assert!(!out.contains("10.0.0.5 3478 typ host"));
    }
}
