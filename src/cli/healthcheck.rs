//! `recalcd healthcheck`: asks a running `recalcd run` whether it is ready, for
//! container health checks (no curl needed in the image).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use super::GlobalArgs;

/// The most of an answer that is read.
const MAX_ANSWER: u64 = 64 * 1024;

/// Arguments of `recalcd healthcheck` (its description is on
/// [`super::Command::Healthcheck`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's endpoint; default: `http.listen` of the configuration (an
    /// unspecified address such as `0.0.0.0` is asked on the loopback).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<SocketAddr>,

    /// The path to ask: `/readyz` (ready) or `/healthz` (up).
    #[arg(long, default_value = "/readyz", value_name = "PATH")]
    pub path: String,

    /// Give up after this long (e.g. `3s`).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = recalcd::config::parse_duration)]
    pub timeout: Duration,
}

/// Runs `recalcd healthcheck`: prints the answer's first line, exits 0 on 200.
pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let addr = match args.addr {
        Some(addr) => addr,
        None => {
            let config = global.load_config()?;
            let Some(addr) = config.http.listen else {
                return Err(super::usage(
                    "the HTTP endpoint is off (`http.listen`); give --addr",
                ));
            };
            addr
        }
    };
    if !args.path.starts_with('/') || args.path.contains(char::is_whitespace) {
        return Err(super::usage(format!("`{}` is not a path", args.path)));
    }
    let target = loopback_if_unspecified(addr);
    let (status, body) = get(target, &args.path, args.timeout)
        .map_err(|e| anyhow::anyhow!(e).context(format!("cannot ask {target}{}", args.path)))?;
    println!("{}", body.lines().next().unwrap_or_default());
    Ok(if status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `0.0.0.0` and `[::]` mean "every interface" to a server; a client asks the loopback.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// A plain HTTP/1.1 `GET`: the status code and the body.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.take(MAX_ANSWER).read_to_string(&mut answer)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let status = answer
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_asked_on_the_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            loopback_if_unspecified(a("0.0.0.0:9187")),
            a("127.0.0.1:9187")
        );
        assert_eq!(loopback_if_unspecified(a("[::]:9187")), a("[::1]:9187"));
        assert_eq!(loopback_if_unspecified(a("10.0.0.5:80")), a("10.0.0.5:80"));
    }
}
