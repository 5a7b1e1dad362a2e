//! dafka_admin: asks a running cluster who is there, what the stores hold
//! and how far named consumers are.

use clap::{Parser, Subcommand};
use dafka::admin::{ask, view, Question, Report};
use dafka::Section;
use dafka_cli::admin as show;
use dafka_cli::{init_logging, main_with, parse, NodeArgs};
use std::process::ExitCode;
use std::time::Duration;

/// Ask a running Dafka cluster about itself.
///
/// Joins the cluster through its towers for as long as the question takes.
/// Exit status: 0 when every tower and store answered, 1 on an error or
/// when nothing matches (an unknown topic, a consumer name with no
/// positions), 2 on bad usage, 3 when no tower answered, 4 when some tower
/// or store did not answer in time (what did answer is printed).
#[derive(Parser, Debug)]
#[command(name = "dafka_admin", version)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
    /// How long to wait for answers: 5s, 500ms, or milliseconds
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout, global = true)]
    timeout: Duration,
    /// Print JSON for scripts instead of a table
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every node the towers know: id, role, address, when last heard
    Peers,
    /// Every topic the stores hold: partitions, records, bytes, stores
    Topics,
    /// The partitions of TOPIC: log start, head, records, bytes, which
    /// stores hold each, and where their copies differ
    Partitions {
        /// The topic
        #[arg(value_parser = parse_name)]
        topic: String,
    },
    /// Where the consumer named NAME stands in each partition of the
    /// topics it committed in: position, head, lag
    Positions {
        /// The consumer's name (its --name)
        #[arg(value_parser = parse_name)]
        name: String,
    },
    /// A consumer group: its members, and which member reads each
    /// partition of its topics (as the members compute it), with the lag
    Group {
        /// The group's name (its members' --group)
        #[arg(value_parser = parse_name)]
        name: String,
    },
    /// The lag of the consumer named NAME, per topic
    Lag {
        /// The consumer's name (its --name)
        #[arg(value_parser = parse_name)]
        name: String,
    },
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("not a duration: {e}"))?,
    };
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

fn parse_name(s: &str) -> Result<String, String> {
    dafka::proto::validate_topic(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_admin");
    init_logging(cli.node.verbose);
    main_with("dafka_admin", || {
        let cfg = cli.node.config("dafka_admin", &[Section::Beacon])?;
        cfg.validate()?;
        let question = match &cli.command {
            Command::Peers => Question::Peers,
            Command::Topics => Question::Partitions { topic: None },
            Command::Partitions { topic } => Question::Partitions {
                topic: Some(topic.clone()),
            },
            Command::Positions { name } | Command::Lag { name } | Command::Group { name } => {
                Question::Positions { name: name.clone() }
            }
        };
        let report = ask(&cfg.beacon, question, cli.timeout)?;
        let warnings = show::warnings(&report, &cfg.beacon.pub_address);
        for w in &warnings {
            eprintln!("dafka_admin: {w}");
        }
        if report.towers.is_empty() {
            return Ok(ExitCode::from(3));
        }
        let found = print(&cli, &report, &cfg.beacon.pub_address);
        Ok(match (found, warnings.is_empty()) {
            (Err(missing), _) => {
                eprintln!("dafka_admin: {missing}");
                ExitCode::from(if warnings.is_empty() { 1 } else { 4 })
            }
            (Ok(()), true) => ExitCode::SUCCESS,
            (Ok(()), false) => ExitCode::from(4),
        })
    })
}

/// Prints the answer; says what was asked for and is not there.
fn print(cli: &Cli, report: &Report, towers: &str) -> Result<(), String> {
    let (text, json, missing) = match &cli.command {
        Command::Peers => {
            let peers = show::with_towers(report, towers);
            (show::peers_table(&peers), show::peers_json(&peers), None)
        }
        Command::Topics => {
            let rows = view::topics(report);
            let none = rows
                .is_empty()
                .then(|| "no store holds any topic".to_string());
            (show::topics_table(&rows), show::topics_json(&rows), none)
        }
        Command::Partitions { topic } => {
            let rows = view::partitions(report);
            let none = rows
                .is_empty()
                .then(|| format!("no store holds topic {topic}"));
            (
                show::partitions_table(&rows),
                show::partitions_json(&rows),
                none,
            )
        }
        Command::Positions { name } => {
            let rows = view::positions(report);
            let none = rows.is_empty().then(|| no_positions(name));
            (
                show::positions_table(&rows),
                show::positions_json(&rows),
                none,
            )
        }
        Command::Group { name } => {
            let (members, rows) = view::group(report, name);
            let none = (rows.is_empty() && members.is_empty()).then(|| {
                format!("no member of group {name} is running and no store keeps a position for it")
            });
            (
                show::group_table(&members, &rows),
                show::group_json(&members, &rows),
                none,
            )
        }
        Command::Lag { name } => {
            let rows = view::lag(report);
            let none = rows.is_empty().then(|| no_positions(name));
            (show::lag_table(&rows), show::lag_json(&rows), none)
        }
    };
    if cli.json {
        println!("{json}");
    } else if missing.is_none() {
        print!("{text}");
    }
    missing.map_or(Ok(()), Err)
}

fn no_positions(name: &str) -> String {
    format!("no store keeps a position for consumer {name}")
}
