//! Command lines of `etcd-export` and `etcd-import`, and their `main`s.
//!
//! Exit codes: 0 success, 1 runtime error (etcd, files, invalid input, conflicts), 2 usage
//! error. Errors are one line on stderr: `etcd-import: dump.json:12: <reason>`.

use crate::diff::Verbosity;
use crate::error::{Error, Result};
use crate::export::{export, ExportOptions};
use crate::format::{Encoding, Format};
use crate::import::{import, validate, ImportOptions, Input, DEFAULT_MAX_TXN_BYTES};
use crate::record::{KeyType, ValueType};
use bytes::Bytes;
use clap::{Args, CommandFactory, Parser};
use etcd_kv::{redact_endpoint, Client, TlsConfig};
use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How to reach etcd: shared by both tools.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct ConnectionArgs {
    /// etcd endpoint(s), comma-separated; `host:port` means `http://host:port`
    /// (`https://` with TLS options); the port is required
    #[arg(
        short = 'a',
        long = "address",
        visible_alias = "endpoints",
        value_name = "ADDRESS",
        value_delimiter = ',',
        default_value = "http://localhost:2379"
    )]
    pub address: Vec<String>,

    /// Trust the CA certificates of this PEM file (for https endpoints)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs --key
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS; needs --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Authenticate as this etcd user; the password after a colon, with --password or in
    /// ETCD_PASSWORD
    #[arg(long, value_name = "NAME[:PASSWORD]")]
    pub user: Option<String>,

    /// The password of --user
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ETCD_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// Speak native gRPC to etcd instead of its JSON gateway (faster; same files; needs
    /// tools built with `--features grpc`, others refuse it saying so)
    #[arg(long, env = "ETCD_TOOLS_GRPC", value_parser = clap::builder::FalseyValueParser::new())]
    pub grpc: bool,
}

/// The usage error of `--grpc` (or `ETCD_TOOLS_GRPC`) in tools built without the `grpc`
/// feature.
pub const GRPC_MISSING: &str = "built without gRPC: rebuild with `--features grpc`";

impl ConnectionArgs {
    /// Checks what clap cannot: `--grpc` needs a build with the `grpc` feature.
    pub fn check(&self) -> Result<()> {
        if self.grpc && !cfg!(feature = "grpc") {
            return Err(Error::Usage(GRPC_MISSING.into()));
        }
        Ok(())
    }

    fn tls_wanted(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some()
    }

    /// The endpoint URLs, with a scheme added where missing (not to a misspelt one, such
    /// as `http:/h:1` or `http//h:1`, nor to one with credentials: the client refuses
    /// those with a message saying what to write).
    pub fn endpoints(&self) -> Vec<String> {
        let scheme = if self.tls_wanted() { "https" } else { "http" };
        self.address
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .map(|a| {
                if a.contains("://") || a.contains('@') || misspelt_scheme(a) {
                    a.to_string()
                } else {
                    format!("{scheme}://{a}")
                }
            })
            .collect()
    }

    /// The user name and password, if any.
    pub fn credentials(&self) -> Result<Option<(String, String)>> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let (name, password) = match user.split_once(':') {
            Some((name, password)) => (name, Some(password.to_string())),
            None => (user.as_str(), self.password.clone()),
        };
        let password = password.ok_or_else(|| {
            Error::Usage(format!(
                "no password for user {name:?}: give --user {name}:PASSWORD, --password or \
                 ETCD_PASSWORD"
            ))
        })?;
        Ok(Some((name.to_string(), password)))
    }

    /// Builds a client and checks that an endpoint answers.
    pub async fn connect(&self, max_txn_ops: usize) -> Result<Client> {
        self.check()?;
        let endpoints = self.endpoints();
        if endpoints.is_empty() {
            return Err(Error::Usage("no etcd address given".into()));
        }
        if let Some(with_credentials) = endpoints.iter().find(|e| e.contains('@')) {
            return Err(Error::Usage(format!(
                "address {:?} has credentials in it: credentials in the address are not \
                 used; write the address without them and give them with --user \
                 NAME[:PASSWORD]",
                redact_endpoint(with_credentials)
            )));
        }
        let mut builder = Client::builder()
            .endpoints(endpoints.clone())
            .max_txn_ops(max_txn_ops);
        if self.tls_wanted() {
            let tls_error = |e| Error::io("invalid TLS options", e);
            let mut tls = TlsConfig::default();
            if let Some(ca) = &self.cacert {
                tls = tls.ca_file(ca).map_err(tls_error)?;
            }
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                tls = tls.identity_files(cert, key).map_err(tls_error)?;
            }
            builder = builder.tls(tls);
        }
        if let Some((name, password)) = self.credentials()? {
            builder = builder.credentials(name, password);
        }
        #[cfg(feature = "grpc")]
        if self.grpc {
            builder = builder.protocol(etcd_kv::Protocol::Grpc);
        }
        builder.connect().await.map_err(|e| {
            let shown: Vec<String> = endpoints.iter().map(|e| redact_endpoint(e)).collect();
            Error::etcd(format!("cannot connect to etcd at {}", shown.join(",")), e)
        })
    }
}

/// True for an address that starts like a URL with a misspelt scheme: `http:/h:1`,
/// `htp:/h`, `http//h:1`.
fn misspelt_scheme(address: &str) -> bool {
    let head = address.split('/').next().unwrap_or("");
    if address.find(":/").is_some_and(|i| i < head.len() + 1) {
        return true;
    }
    address
        .split_once("//")
        .is_some_and(|(word, _)| !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()))
}

/// The command line of `etcd-export`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "etcd-export",
    version,
    about = "Dump etcd keys to a file (JSON, CSV or JSON lines), as a consistent snapshot at one \
             revision."
)]
#[non_exhaustive]
pub struct ExportArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: ConnectionArgs,

    /// How keys are written: utf8 text, or base64 (binary)
    #[arg(short = 'k', long = "key-type", value_enum, default_value_t = KeyType::Utf8)]
    pub key_type: KeyType,

    /// How values are written: embedded JSON, utf8 text, or base64 (binary)
    #[arg(short = 'v', long = "value-type", value_enum, default_value_t = ValueType::Json)]
    pub value_type: ValueType,

    /// The file format
    #[arg(
        short = 'f',
        long = "output-format",
        visible_alias = "format",
        value_enum,
        default_value_t = Format::Json
    )]
    pub format: Format,

    /// With -f csv, start with the header record `key,value` (txaioetcd writes none)
    #[arg(long)]
    pub csv_header: bool,

    /// Write to this file (replaced only when the export succeeds) instead of stdout
    #[arg(short = 'o', long = "output-file", value_name = "OUTPUT_FILE")]
    pub output_file: Option<PathBuf>,

    /// Export only keys starting with PREFIX
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<OsString>,

    /// Export the keyspace as of this past revision (default: the current one)
    #[arg(long, value_name = "REVISION", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,

    /// Add create_revision, mod_revision, version and lease to each record (-f jsonl only)
    #[arg(long)]
    pub with_metadata: bool,

    /// Keys read per request; memory use is bounded by one page
    #[arg(long, value_name = "N", default_value_t = 1000, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub page_size: i64,

    /// Print no summary line and no progress bar
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The command line of `etcd-import`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "etcd-import",
    version,
    about = "Load keys from a file written by etcd-export (or by hand) into etcd: only what \
             differs is written, in atomic batches."
)]
#[non_exhaustive]
pub struct ImportArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: ConnectionArgs,

    /// How keys are written in the file: utf8 text, or base64 (binary)
    #[arg(short = 'k', long = "key-type", value_enum, default_value_t = KeyType::Utf8)]
    pub key_type: KeyType,

    /// How values are written in the file: embedded JSON, utf8 text, or base64 (binary)
    #[arg(short = 'v', long = "value-type", value_enum, default_value_t = ValueType::Json)]
    pub value_type: ValueType,

    /// The file format
    #[arg(
        short = 'f',
        long = "input-format",
        visible_alias = "format",
        value_enum,
        default_value_t = Format::Json
    )]
    pub format: Format,

    /// With -f csv, the file starts with the header record `key,value` (txaioetcd's files
    /// have none)
    #[arg(long)]
    pub csv_header: bool,

    /// Write nothing: report what would be added, changed and deleted
    #[arg(short = 'd', long)]
    pub dry_run: bool,

    /// Write the report (of the dry run or of the import) to this file instead of stdout
    #[arg(short = 'o', long = "dry-output", value_name = "DRY_OUTPUT")]
    pub dry_output: Option<PathBuf>,

    /// Report nothing, a summary line, or also one line per added (+), changed (~) or
    /// deleted (-) key
    #[arg(long, value_enum, default_value_t = Verbosity::Compact)]
    pub verbosity: Verbosity,

    /// Import only the file's keys starting with PREFIX (others are skipped); --replace
    /// deletes only under it
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<OsString>,

    /// Also delete keys under the prefix (all keys without --prefix) that are not in the
    /// file. txaioetcd's etcd-import always does this; without --replace they are kept and
    /// the summary counts them
    #[arg(long)]
    pub replace: bool,

    /// Abort, writing nothing more, if any key under the prefix was created, changed or
    /// deleted after this revision of the target (e.g. the one a dry run reported)
    #[arg(long, value_name = "REVISION", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub unchanged_since: Option<i64>,

    /// The most operations per transaction (the server's --max-txn-ops)
    #[arg(long, value_name = "N", default_value_t = 128, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub max_txn_ops: i64,

    /// The most bytes of keys and values per transaction (under the server's
    /// --max-request-bytes, 1.5 MiB by default)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_TXN_BYTES,
          allow_negative_numbers = true,
          value_parser = clap::builder::RangedI64ValueParser::<usize>::new().range(1..))]
    pub max_txn_bytes: usize,

    /// Transactions in flight at once (1 with --unchanged-since)
    #[arg(long, value_name = "N", default_value_t = 4, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=64))]
    pub concurrency: i64,

    /// Import even when the file looks written with other -k/-v flags (e.g. every key
    /// base64 under -k utf8, or every value a JSON string of text under -v json)
    #[arg(long)]
    pub force: bool,

    /// The file to import; `-` reads stdin
    #[arg(value_name = "INPUT_FILE")]
    pub input_file: PathBuf,
}

fn bytes_of(os: &Option<OsString>) -> Bytes {
    os.clone()
        .map(|p| Bytes::from(p.into_encoded_bytes()))
        .unwrap_or_default()
}

impl ExportArgs {
    /// Checks combinations clap cannot express.
    pub fn check(&self) -> std::result::Result<(), clap::Error> {
        if let Err(e) = self.connection.check() {
            return Err(ExportArgs::command()
                .error(clap::error::ErrorKind::ArgumentConflict, e.to_string()));
        }
        if self.csv_header && self.format != Format::Csv {
            return Err(ExportArgs::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--csv-header needs -f csv",
            ));
        }
        if self.with_metadata && self.format != Format::Jsonl {
            return Err(ExportArgs::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--with-metadata needs -f jsonl (the {} format has no room for it)",
                    self.format.name()
                ),
            ));
        }
        Ok(())
    }

    /// The export options these arguments mean.
    pub fn options(&self) -> ExportOptions {
        let mut options = ExportOptions::new(
            Encoding::new(self.format, self.key_type, self.value_type)
                .with_csv_header(self.csv_header),
        );
        options.prefix = bytes_of(&self.prefix);
        options.revision = self.revision;
        options.with_metadata = self.with_metadata;
        options.page_size = self.page_size;
        options.progress = !self.quiet;
        options
    }
}

impl ImportArgs {
    /// Checks combinations clap cannot express.
    pub fn check(&self) -> std::result::Result<(), clap::Error> {
        if let Err(e) = self.connection.check() {
            return Err(ImportArgs::command()
                .error(clap::error::ErrorKind::ArgumentConflict, e.to_string()));
        }
        if self.csv_header && self.format != Format::Csv {
            return Err(ImportArgs::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--csv-header needs -f csv",
            ));
        }
        if self.unchanged_since.is_some() && self.max_txn_ops < 2 {
            return Err(ImportArgs::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--unchanged-since needs --max-txn-ops 2 or more (one compare per transaction)",
            ));
        }
        Ok(())
    }

    /// The import options these arguments mean.
    pub fn options(&self) -> ImportOptions {
        let mut options = ImportOptions::new(
            Encoding::new(self.format, self.key_type, self.value_type)
                .with_csv_header(self.csv_header),
        );
        options.prefix = bytes_of(&self.prefix);
        options.replace = self.replace;
        options.dry_run = self.dry_run;
        options.unchanged_since = self.unchanged_since;
        options.max_txn_ops = self.max_txn_ops as usize;
        options.max_txn_bytes = self.max_txn_bytes;
        options.concurrency = self.concurrency as usize;
        options.verbosity = self.verbosity;
        options.progress = self.verbosity != Verbosity::Silent;
        options.force = self.force;
        options
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}

fn finish(tool: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{tool}: {}", e.one_line());
            ExitCode::from(e.exit_code())
        }
    }
}

/// `main` of `etcd-export`.
pub fn export_main() -> ExitCode {
    let args = ExportArgs::parse();
    if let Err(e) = args.check() {
        e.exit();
    }
    finish(
        "etcd-export",
        runtime().and_then(|rt| rt.block_on(run_export(&args))),
    )
}

/// `main` of `etcd-import`.
pub fn import_main() -> ExitCode {
    let args = ImportArgs::parse();
    if let Err(e) = args.check() {
        e.exit();
    }
    finish(
        "etcd-import",
        runtime().and_then(|rt| rt.block_on(run_import(&args))),
    )
}

/// Runs `etcd-export` with these arguments.
pub async fn run_export(args: &ExportArgs) -> Result<()> {
    let options = args.options();
    let client = args.connection.connect(128).await?;
    let (summary, to) = match &args.output_file {
        Some(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let cannot = |e| Error::io(format!("cannot write {}", path.display()), e);
            let mut builder = tempfile::Builder::new();
            builder.prefix(".etcd-export-");
            #[cfg(unix)]
            {
                // As File::create would: 0666 less the umask (tempfile's default is 0600).
                use std::os::unix::fs::PermissionsExt;
                builder.permissions(std::fs::Permissions::from_mode(0o666));
            }
            let temp = builder.tempfile_in(dir).map_err(cannot)?;
            let summary = export(&client, &options, BufWriter::new(temp.as_file())).await?;
            temp.as_file().sync_all().map_err(cannot)?;
            temp.persist(path).map_err(|e| cannot(e.error))?;
            (summary, format!(" to {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let summary = export(&client, &options, BufWriter::new(stdout.lock())).await?;
            (summary, String::new())
        }
    };
    if !args.quiet {
        let s = if summary.keys == 1 { "" } else { "s" };
        let _ = writeln!(
            std::io::stderr(),
            "etcd-export: exported {} key{s} at revision {}{to}",
            summary.keys,
            summary.revision
        );
    }
    Ok(())
}

/// Runs `etcd-import` with these arguments: the file is checked before connecting.
pub async fn run_import(args: &ImportArgs) -> Result<()> {
    let options = args.options();
    let input = if args.input_file.as_os_str() == "-" {
        Input::stdin()?
    } else {
        Input::path(&args.input_file)
    };
    let validated = validate(&input, &options)?;
    // From here on Ctrl-C stops the import between transactions (exit code 130); a
    // second one stops at once.
    let watcher = tokio::spawn(interrupt_on_ctrl_c(options.interrupt.clone()));
    let result = connect_and_import(args, &options, &input, &validated).await;
    watcher.abort();
    result
}

async fn connect_and_import(
    args: &ImportArgs,
    options: &ImportOptions,
    input: &Input,
    validated: &crate::import::Validated,
) -> Result<()> {
    let client = args.connection.connect(args.max_txn_ops as usize).await?;
    let report: Box<dyn Write> = match &args.dry_output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    import(&client, input, validated, options, report).await?;
    Ok(())
}

/// Triggers `interrupt` on the first Ctrl-C (SIGINT); exits with 130 on the second.
async fn interrupt_on_ctrl_c(interrupt: crate::import::Interrupt) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    interrupt.trigger();
    let _ = writeln!(
        std::io::stderr(),
        "etcd-import: interrupted: sending nothing more, waiting for the transactions in \
         flight (Ctrl-C again to stop at once)"
    );
    if tokio::signal::ctrl_c().await.is_ok() {
        let _ = writeln!(
            std::io::stderr(),
            "etcd-import: interrupted again: stopped without waiting for the transactions in \
             flight, each applied whole or not at all; run the same command again to finish"
        );
        std::process::exit(130);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_and_credential_addresses_are_passed_on_as_written() {
        let a = ExportArgs::try_parse_from([
            "etcd-export",
            "-a",
            "htp:/x,http//h:1,u:pw@h:1,h:2,[::1]:3",
        ])
        .unwrap();
        assert_eq!(
            a.connection.endpoints(),
            [
                "htp:/x",
                "http//h:1",
                "u:pw@h:1",
                "http://h:2",
                "http://[::1]:3"
            ]
        );
        assert_eq!(redact_endpoint("http://u:pw@h:1"), "http://***@h:1");
        assert_eq!(redact_endpoint("u:pw@h:1"), "***@h:1");
        assert_eq!(redact_endpoint("http://h:1"), "http://h:1");
    }

    #[test]
    fn command_lines_are_consistent() {
        ExportArgs::command().debug_assert();
        ImportArgs::command().debug_assert();
    }

    #[test]
    fn seed_flags_and_defaults() {
        let a = ExportArgs::try_parse_from(["etcd-export"]).unwrap();
        assert_eq!(a.connection.endpoints(), ["http://localhost:2379"]);
        assert_eq!(
            (a.key_type, a.value_type, a.format),
            (KeyType::Utf8, ValueType::Json, Format::Json)
        );
        assert!(a.output_file.is_none());
        let a = ExportArgs::try_parse_from([
            "etcd-export",
            "-a",
            "h1:2379,https://h2:2379",
            "-k",
            "binary",
            "-v",
            "utf8",
            "-f",
            "csv",
            "-o",
            "out.csv",
        ])
        .unwrap();
        assert_eq!(
            a.connection.endpoints(),
            ["http://h1:2379", "https://h2:2379"]
        );
        assert_eq!(
            (a.key_type, a.value_type, a.format),
            (KeyType::Binary, ValueType::Utf8, Format::Csv)
        );
        let i = ImportArgs::try_parse_from([
            "etcd-import",
            "-d",
            "-o",
            "dry.txt",
            "--verbosity",
            "verbose",
            "-f",
            "jsonl",
            "in",
        ])
        .unwrap();
        assert!(i.dry_run);
        assert_eq!(i.verbosity, Verbosity::Verbose);
        assert_eq!(i.format, Format::Jsonl);
        assert_eq!(i.max_txn_ops, 128);
    }

    #[test]
    fn usage_errors() {
        use clap::error::ErrorKind;
        let e = ExportArgs::try_parse_from(["etcd-export", "-k", "text"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert_eq!(e.exit_code(), 2);
        let e = ImportArgs::try_parse_from(["etcd-import"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let a = ExportArgs::try_parse_from(["etcd-export", "--with-metadata"]).unwrap();
        assert_eq!(a.check().unwrap_err().exit_code(), 2);
        let e = ExportArgs::try_parse_from(["etcd-export", "--cert", "c.pem"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = ExportArgs::try_parse_from(["etcd-export", "--revision", "0"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        // A negative number is a bad value, not an unknown flag.
        let e = ExportArgs::try_parse_from(["etcd-export", "--page-size", "-5"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(
            e.to_string().contains("-5 is not in 1..=100000"),
            "{}",
            e.to_string()
        );
        for flag in [
            "--max-txn-ops",
            "--max-txn-bytes",
            "--concurrency",
            "--unchanged-since",
        ] {
            let e = ImportArgs::try_parse_from(["etcd-import", flag, "-1", "in"]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{flag}: {e}");
        }
        let a = ExportArgs::try_parse_from(["etcd-export", "--csv-header"]).unwrap();
        assert_eq!(a.check().unwrap_err().exit_code(), 2);
        let i =
            ImportArgs::try_parse_from(["etcd-import", "--csv-header", "-f", "csv", "in"]).unwrap();
        assert!(i.check().is_ok() && i.options().encoding.csv_header);
    }

    #[test]
    fn grpc_always_parses() {
        let a = ImportArgs::try_parse_from(["etcd-import", "--grpc", "in"]).unwrap();
        assert!(a.connection.grpc);
        let e = ExportArgs::try_parse_from(["etcd-export", "--grpc"]).unwrap();
        if cfg!(feature = "grpc") {
            assert!(a.check().is_ok() && e.check().is_ok());
        } else {
            for err in [a.check().unwrap_err(), e.check().unwrap_err()] {
                assert_eq!(err.exit_code(), 2);
                assert!(err.to_string().contains(GRPC_MISSING), "{err}");
            }
        }
    }

    #[test]
    fn credentials_and_tls_schemes() {
        let a = ExportArgs::try_parse_from(["etcd-export", "--user", "root:pa:ss"]).unwrap();
        assert_eq!(
            a.connection.credentials().unwrap(),
            Some(("root".into(), "pa:ss".into()))
        );
        let a = ExportArgs::try_parse_from(["etcd-export", "--user", "root", "--password", "x"])
            .unwrap();
        assert_eq!(
            a.connection.credentials().unwrap(),
            Some(("root".into(), "x".into()))
        );
        let mut a = ExportArgs::try_parse_from(["etcd-export", "--user", "root"]).unwrap();
        a.connection.password = None;
        assert_eq!(a.connection.credentials().unwrap_err().exit_code(), 2);
        let a =
            ExportArgs::try_parse_from(["etcd-export", "-a", "h:1", "--cacert", "ca.pem"]).unwrap();
        assert_eq!(a.connection.endpoints(), ["https://h:1"]);
    }
}
