//! The `/etc/resolv.conf` containers get: the host's, without loopback name servers (a
//! container has its own loopback, so `127.0.0.53` of systemd-resolved answers nothing there).

/// Name servers used when the host lists only loopback ones, as Docker does.
const FALLBACK: [&str; 2] = ["1.1.1.1", "8.8.8.8"];

/// The container's resolv.conf for the host's, and whether the fallback servers were used.
pub fn for_containers(host: &str) -> (String, bool) {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let Some(server) = words.next() else { continue };
                let loopback = server
                    .parse::<std::net::IpAddr>()
                    .map_or(true, |ip| ip.is_loopback());
                if !loopback {
                    out.push_str(&format!("nameserver {server}\n"));
                    servers += 1;
                }
            }
            Some("search" | "domain" | "options") => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    let fallback = servers == 0;
    if fallback {
        for server in FALLBACK {
            out.push_str(&format!("nameserver {server}\n"));
        }
    }
    (out, fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_and_comments_are_dropped_and_the_rest_kept() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0\nnameserver ::1\n";
        let (text, fallback) = for_containers(host);
        assert_eq!(
            text,
            "nameserver 10.0.0.2\nsearch example.com\noptions edns0\n"
        );
        assert!(!fallback);
    }

    #[test]
    fn a_host_with_only_loopback_servers_gives_public_ones() {
        let (text, fallback) = for_containers("nameserver 127.0.0.53\nsearch lan\n");
        assert_eq!(text, "search lan\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n");
        assert!(fallback);
        assert!(for_containers("").1);
    }
}
