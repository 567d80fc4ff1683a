//! A throwaway PostgreSQL for `recalcd demo`: built from the PostgreSQL programs installed
//! on the machine, in a temporary directory, on a free port, removed when dropped.
//!
//! PostgreSQL refuses to run as root; when recalcd runs as root (a container, a CI box)
//! the server is run as the `postgres` system user through `runuser`.

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the throwaway server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No `initdb`/`pg_ctl` was found.
    #[error(
        "no PostgreSQL server programs (initdb, pg_ctl) were found on this machine; install \
         them (Debian/Ubuntu: `apt-get install postgresql`, Fedora: `dnf install \
         postgresql-server`, macOS: `brew install postgresql`) or point recalcd at a \
         database with --database-url"
    )]
    NotInstalled,
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error(
        "PostgreSQL cannot run as root and there is no `postgres` user to run it as; run \
         recalcd demo as an ordinary user or give it a database with --database-url"
    )]
    NoServerUser,
    /// A step failed; `output` is what the program printed.
    #[error("{step} failed: {output}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// The program's output (stderr, else stdout), trimmed.
        output: String,
    },
    /// A file-system or process error.
    #[error("{step}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running throwaway PostgreSQL. Stopped and deleted on drop.
#[derive(Debug)]
pub struct TempServer {
    /// The directory holding the cluster, the socket and the log.
    dir: PathBuf,
    /// Where `pg_ctl` lives.
    bin: PathBuf,
    /// The TCP port the server listens on (127.0.0.1 only).
    port: u16,
    /// `runuser -u postgres --` when running as root, else nothing.
    run_as: Vec<String>,
}

impl TempServer {
    /// Initialises and starts a new cluster (trust authentication, user `postgres`).
    ///
    /// # Errors
    /// [`ServerError::NotInstalled`] when no PostgreSQL programs are found, otherwise
    /// the step that failed with the program's own message.
    pub fn start() -> Result<TempServer, ServerError> {
        TempServer::start_with(None)
    }

    /// [`TempServer::start`], but every connection must give `password` for the user
    /// `postgres` (SCRAM authentication): for testing what clients do with a wrong one.
    ///
    /// # Errors
    /// As [`TempServer::start`].
    pub fn start_with_password(password: &str) -> Result<TempServer, ServerError> {
        TempServer::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Result<TempServer, ServerError> {
        let bin = find_bin_dir().ok_or(ServerError::NotInstalled)?;
        let run_as = if running_as_root() {
            if !user_exists("postgres") {
                return Err(ServerError::NoServerUser);
            }
            ["runuser", "-u", "postgres", "--"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        };
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("recalcd-demo-{}-{stamp}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|source| ServerError::Io {
            step: "creating the server's directory",
            source,
        })?;
        let port = free_port().map_err(|source| ServerError::Io {
            step: "finding a free port",
            source,
        })?;
        let server = TempServer {
            dir,
            bin,
            port,
            run_as,
        };
        if !server.run_as.is_empty() {
            server.run(
                "handing the directory to the postgres user",
                Command::new("chown").arg("postgres").arg(&server.dir),
            )?;
        }
        let data = server.dir.join("data");
        let pwfile = server.dir.join("password");
        let mut args: Vec<&OsStr> = vec![
            "-D".as_ref(),
            data.as_os_str(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-sync".as_ref(),
        ];
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        match password {
            None => args.extend([OsStr::new("-A"), OsStr::new("trust")]),
            Some(pw) => {
                fs::write(&pwfile, pw).map_err(|source| ServerError::Io {
                    step: "writing the password file",
                    source,
                })?;
                if !server.run_as.is_empty() {
                    server.run(
                        "handing the password file to the postgres user",
                        Command::new("chown").arg("postgres").arg(&pwfile),
                    )?;
                }
                args.extend([
                    OsStr::new("-A"),
                    OsStr::new("scram-sha-256"),
                    OsStr::new(&pwfile_arg),
                ]);
            }
        }
        server.run_server_program("initdb", "initdb", &args)?;
        let _ = fs::remove_file(&pwfile);
        server.pg_ctl_start()?;
        Ok(server)
    }

    /// Stops the server (fast shutdown: open sessions are ended), keeping its data
    /// directory and port, so that [`TempServer::start_again`] brings it back as it was.
    /// Used to test what clients do when their server goes away.
    ///
    /// # Errors
    /// [`ServerError::Step`] with `pg_ctl`'s message.
    pub fn stop(&self) -> Result<(), ServerError> {
        let data = self.dir.join("data");
        self.run_server_program(
            "stopping the server",
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    /// Starts a server [`TempServer::stop`] stopped, on the same port and data.
    ///
    /// # Errors
    /// [`ServerError::Step`] with `pg_ctl`'s message (e.g. the port was taken meanwhile).
    pub fn start_again(&self) -> Result<(), ServerError> {
        self.pg_ctl_start()
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    fn pg_ctl_start(&self) -> Result<(), ServerError> {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.run_server_program(
            "starting the server",
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                "start".as_ref(),
            ],
        )
    }

    /// The connection URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The directory holding the cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run_server_program(
        &self,
        step: &'static str,
        program: &str,
        args: &[&std::ffi::OsStr],
    ) -> Result<(), ServerError> {
        let exe = self.bin.join(program);
        let mut cmd = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(&self.dir);
        self.run(step, &mut cmd)
    }

    fn run(&self, step: &'static str, cmd: &mut Command) -> Result<(), ServerError> {
        let out = cmd
            .output()
            .map_err(|source| ServerError::Io { step, source })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ServerError::Step {
                step,
                output: printed(&out),
            })
        }
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run_server_program(
            "stopping the server",
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: `$RECALCD_PG_BIN`, `pg_config --bindir`,
/// the newest `/usr/lib/postgresql/*/bin` (Debian), or the `PATH`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("RECALCD_PG_BIN").map(PathBuf::from) {
        return has_tools(&d).then_some(d);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(d) = from_pg_config.filter(|d| has_tools(d)) {
        return Some(d);
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    debian.sort();
    if let Some((_, d)) = debian.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|d| has_tools(d))
}

/// The process's effective user is root (`/proc/self` belongs to the effective user).
fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn printed(out: &Output) -> String {
    let text = if out.stderr.is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    String::from_utf8_lossy(text).trim().to_owned()
}
