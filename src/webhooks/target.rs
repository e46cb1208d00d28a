//! Where webhooks may go: `https://` URLs of public hosts. An organization
//! administrator chooses the URL, so without these rules the server could be made to
//! POST into its own network (loopback, private ranges, cloud metadata addresses).
//! The URL is checked when it is set, and every address its host resolves to is
//! checked again before each delivery (a name may point somewhere else later).
//!
//! `--webhooks-allow-insecure-loopback` (tests, local development) also admits
//! `http://` and `https://` to loopback hosts: `localhost`, 127.0.0.0/8, `[::1]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// What the server allows beyond public `https://` endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Also allow loopback hosts, over `http://` too.
    pub allow_insecure_loopback: bool,
}

/// Checks a webhook URL and returns it parsed; the error is a message for the client.
pub fn check_url(policy: UrlPolicy, text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("url is longer than {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text.trim()).map_err(|e| format!("url is not a valid URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("url must not have a #fragment".into());
    }
    let host = url
        .host()
        .ok_or_else(|| "url must name a host".to_string())?;
    let loopback = match &host {
        Host::Domain(name) => is_localhost_name(name),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => loopback && policy.allow_insecure_loopback,
        _ => false,
    };
    if !scheme_ok {
        return Err("url must start with https://".into());
    }
    if loopback && !policy.allow_insecure_loopback {
        return Err("url must not point at a loopback host".into());
    }
    let literal = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = literal {
        if !address_allowed(policy, ip) {
            return Err("url must not point at a private, link-local or reserved address".into());
        }
    }
    Ok(url)
}

/// Whether a delivery may connect to `ip`: public unicast addresses, and loopback
/// when the policy allows it.
pub fn address_allowed(policy: UrlPolicy, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if ip.is_loopback() {
        return policy.allow_insecure_loopback;
    }
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_insecure_loopback: false,
    };
    const LOOPBACK: UrlPolicy = UrlPolicy {
        allow_insecure_loopback: true,
    };

    #[test]
    fn public_https_urls_pass() {
        for url in [
            "https://hooks.example.com/theraroom",
            "https://203.0.114.7:8443/in?x=1",
            "https://[2606:4700::1]/x",
        ] {
            assert!(check_url(STRICT, url).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_urls_are_refused() {
        for url in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
            "https://localhost/",
            "http://127.0.0.1:9000/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://192.168.0.10/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "not a url",
        ] {
            assert!(check_url(STRICT, url).is_err(), "{url}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(STRICT, &long).is_err());
    }

    #[test]
    fn loopback_passes_only_with_the_setting() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost:9000/",
            "https://[::1]:9000/",
        ] {
            assert!(check_url(LOOPBACK, url).is_ok(), "{url}");
            assert!(check_url(STRICT, url).is_err(), "{url}");
        }
        assert!(check_url(LOOPBACK, "http://hooks.example.com/").is_err());
        assert!(check_url(LOOPBACK, "https://10.0.0.1/").is_err());
        assert!(address_allowed(LOOPBACK, "127.0.0.1".parse().unwrap()));
        assert!(!address_allowed(STRICT, "::1".parse().unwrap()));
        assert!(!address_allowed(LOOPBACK, "172.16.0.1".parse().unwrap()));
        assert!(address_allowed(STRICT, "8.8.8.8".parse().unwrap()));
    }
}
