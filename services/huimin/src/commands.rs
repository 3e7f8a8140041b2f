//! The command line: `serve`, `migrate`, `seed`, `staff add`, `keys generate`,
//! `import persons`, `import payments`, `import facts`.

use huimin_identity::TokenSigner;
use std::{io::BufRead as _, path::PathBuf};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use clap::{Parser, Subcommand};
use huimin_demo::seed::Scale;
use huimin_identity::{Identity, IdentityConfig, staff::NewStaff};
use huimin_kit::{
    auth::Role,
    config::{Env, TelemetryConfig},
    telemetry,
};
use huimin_ledger::Ledger;

use crate::Services;

#[derive(Debug, Parser)]
#[command(
    name = "huimin",
    version,
    about = "huimin public-welfare fund supervision platform"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a service (or all of them) until SIGTERM.
    Serve {
        /// identity, or all.
        service: Services,
    },
    /// Apply every service's database migrations and exit.
    Migrate,
    /// Fill an empty database with a synthetic county.
    Seed {
        /// small (~20,000 persons) or county (~2,000,000).
        #[arg(long, default_value = "small")]
        scale: Scale,
        /// Do nothing, successfully, if the database already has persons.
        #[arg(long)]
        if_empty: bool,
        /// Plant no irregularities: a clean county the cross-checks must find nothing in.
        #[arg(long)]
        clean: bool,
    },
    /// Manage staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Key material.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The reports' audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Service tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Import files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Big-data cross-checks (大数据比对).
    Check {
        #[command(subcommand)]
        command: CheckCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Bring ledger's facts up to date with identity and run every enabled rule over the
    /// whole county on a running huimin (admin or inspector).
    Run {
        /// The gRPC address of huimin (identity and ledger).
        #[arg(
            long,
            env = "HUIMIN_SERVER_URL",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// What a roll file is, as `--kind` names it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RollKindArg {
    /// 预审: a roll about to be paid; any breach refuses it.
    PreCheck,
    /// 发放记录: the bank's list of payments made; stored whole, breaches become findings.
    Record,
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Create a staff account; the password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        /// admin, inspector, department, town, auditor or provincial.
        #[arg(long)]
        role: Role,
        /// The department's full name, e.g. 博白县民政局 (department), or the
        /// 9-digit town code (town).
        #[arg(long)]
        scope: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Succeed without change if the username exists.
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print fresh keys as environment lines for a new deployment.
    Generate,
    /// Re-seal ID numbers stored before they were bound to their person key
    /// (after upgrading past identity migration 0021); safe while serving.
    Reseal,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import a persons CSV (UTF-8 or GBK): 户编号,姓名,身份证号,与户主关系,村代码.
    Persons { file: PathBuf },
    /// Import a payment roll (CSV in UTF-8 or GBK, or XLSX) into a running
    /// huimin, logged in as a staff member; the password is read from stdin.
    Payments {
        file: PathBuf,
        /// pre-check (预审) or record (发放记录).
        #[arg(long, value_enum, default_value = "pre-check")]
        kind: RollKindArg,
        /// The gRPC address of huimin (identity and ledger).
        #[arg(
            long,
            env = "HUIMIN_SERVER_URL",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Import a reference dataset (比对数据: CSV in UTF-8 or GBK, or XLSX) into a
    /// running identity, logged in as an admin; the password is read from stdin.
    /// Columns per kind: docs/architecture.md, "Reference datasets".
    Facts {
        file: PathBuf,
        /// deceased, public_employee, village_cadre, cadre_relative, vehicle_owner,
        /// company_owner, property_owner or moved_out.
        #[arg(long)]
        kind: String,
        /// The department that sent the file, e.g. 博白县公安局.
        #[arg(long)]
        source: String,
        #[command(flatten)]
        login: Login,
    },
}

/// Connection to a running huimin, as a staff member.
#[derive(Debug, clap::Args)]
struct Login {
    /// The gRPC address of huimin.
    #[arg(
        long,
        env = "HUIMIN_SERVER_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    #[arg(long)]
    username: String,
    /// Read the password from the first line of standard input.
    #[arg(long, required = true)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the keyed hash chain of the audit trail (HUIMIN_AUDIT_HMAC_KEY)
    /// and check it against the head last published under HUIMIN_AUDIT_HEAD_DIR;
    /// exits 1 and names the first altered or missing entry if it is broken.
    Verify,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Sign a service token (for HUIMIN_SERVICE_TOKEN or a provincial system)
    /// with HUIMIN_TOKEN_SIGNING_KEY and print it.
    Issue {
        /// Who the token is for, e.g. ledger or gx-province.
        #[arg(long)]
        sub: String,
        /// service (another huimin service), gateway or provincial.
        #[arg(long)]
        role: Role,
        /// The services that accept it, comma-separated (e.g. identity for
        /// ledger's token; ledger,registry,whistle for a provincial system).
        #[arg(long, value_delimiter = ',', required = true)]
        aud: Vec<String>,
        /// Its lifetime; rotate before it ends (docs/operations.md).
        #[arg(long, default_value_t = 30)]
        ttl_days: u64,
    },
    /// Revoke a token before it expires, read from stdin: every service
    /// refuses it within HUIMIN_REVOCATION_POLL_SECS (20 s by default).
    Revoke {
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::from_process();
    match &cli.command {
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            print_new_keys();
            return Ok(());
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    sub,
                    role,
                    aud,
                    ttl_days,
                },
        } => {
            if let Some(unknown) = aud
                .iter()
                .find(|a| !huimin_kit::auth::SUITE.contains(&a.as_str()))
            {
                anyhow::bail!(
                    "--aud {unknown:?} is not a service; services: {}",
                    huimin_kit::auth::SUITE.join(", ")
                );
            }
            if !matches!(role, Role::Service | Role::Gateway | Role::Provincial) {
                anyhow::bail!(
                    "--role must be service, gateway or provincial; staff log in instead"
                );
            }
            let signer = TokenSigner::from_seed(env.key32("HUIMIN_TOKEN_SIGNING_KEY")?);
            let ttl = ttl_days
                .checked_mul(24 * 3600)
                .filter(|_| (1..=365).contains(ttl_days))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| anyhow::anyhow!("--ttl-days must be 1 to 365"))?;
            let audience: Vec<&str> = aud.iter().map(String::as_str).collect();
            let (token, expires) = signer.issue_for(sub, *role, None, &audience, ttl);
            eprintln!(
                "token for {sub} ({role}) to call {}, expires {expires}",
                audience.join(", ")
            );
            println!("{token}");
            return Ok(());
        }
        _ => {}
    }
    let telemetry_config = TelemetryConfig::from_env(&env, "huimin")?;
    let _guard = match cli.command {
        Command::Serve { .. } => telemetry::init(&telemetry_config)?,
        // Admin commands keep stdout for their own output.
        _ => telemetry::init_with_writer(&telemetry_config, std::io::stderr)?,
    };
    match cli.command {
        Command::Serve { service } => {
            let app = crate::app(&env, service).await?;
            tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), ?service, "huimin started");
            app.run(huimin_kit::shutdown::signal()).await
        }
        Command::Migrate => {
            crate::migrate_all(&env).await?;
            let schemas: Vec<&str> = crate::schemas().map(|schema| schema.name).collect();
            println!("migrations applied: {}", schemas.join(", "));
            Ok(())
        }
        Command::Seed {
            scale,
            if_empty,
            clean,
        } => seed(&env, scale, if_empty, clean).await,
        Command::Staff {
            command:
                StaffCommand::Add {
                    username,
                    role,
                    scope,
                    password_stdin: _,
                    if_missing,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let identity = identity(&env)?;
            identity.migrate().await?;
            let staff = NewStaff {
                username: &username,
                role,
                scope: scope.as_deref(),
                password,
            };
            if identity
                .add_staff(staff, if_missing)
                .await
                .map_err(describe)?
            {
                println!("staff account {username} created ({role})");
            } else {
                println!("staff account {username} already exists");
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Reseal,
        } => {
            let identity = identity(&env)?;
            identity.migrate().await?;
            let total = identity.legacy_sealed_count().await?;
            let progress = indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} re-sealing {pos}/{len} ID numbers {per_sec} eta {eta}",
                )
                .expect("template is valid"),
            );
            let done = identity
                .reseal_id_numbers(|done| progress.set_position(done))
                .await?;
            progress.finish_and_clear();
            println!("re-sealed {done} ID numbers; none are left unbound");
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Revoke { reason },
        } => {
            let mut token = String::new();
            std::io::stdin().lock().read_line(&mut token)?;
            let identity = identity(&env)?;
            identity.migrate().await?;
            let revoked = identity.revoke_token(token.trim(), "cli", &reason).await?;
            println!(
                "revoked token {} of {} (it would have expired {}){}",
                revoked.jti,
                revoked.sub,
                revoked.expires_at,
                if revoked.published {
                    ""
                } else {
                    "; Redis did not confirm: identity publishes it within a minute"
                }
            );
            Ok(())
        }
        Command::Import {
            command: ImportCommand::Persons { file },
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let identity = identity(&env)?;
            identity.migrate().await?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let summary = identity
                .import_persons(&name, &bytes)
                .await
                .map_err(describe)?;
            println!(
                "imported {} persons ({} new, {} updated) in {} households",
                summary.persons, summary.created, summary.updated, summary.households
            );
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Payments {
                    file,
                    kind,
                    server,
                    username,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let kind = match kind {
                RollKindArg::PreCheck => huimin_proto::ledger::v1::RollKind::PreCheck,
                RollKindArg::Record => huimin_proto::ledger::v1::RollKind::Record,
            };
            let outcome =
                crate::client::import_payments(&server, &username, password, &file, kind).await?;
            if outcome.created {
                println!(
                    "roll {} imported: {} payments, {} reversals, net {} fen",
                    outcome.roll_id, outcome.payments, outcome.reversals, outcome.total_fen
                );
            } else {
                println!(
                    "this file was imported before as roll {}; nothing changed",
                    outcome.roll_id
                );
            }
            Ok(())
        }
        Command::Check {
            command:
                CheckCommand::Run {
                    server,
                    username,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let outcome = crate::client::run_checks(&server, &username, password).await?;
            println!(
                "run {}: {} new findings, {} reopened, {} closed, {} facts synced, {:.1} s",
                outcome.run_id,
                outcome.found,
                outcome.reopened,
                outcome.closed,
                outcome.facts_synced,
                outcome.elapsed_ms as f64 / 1000.0
            );
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Facts {
                    file,
                    kind,
                    source,
                    login,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let outcome = crate::client::import_facts(
                &login.server,
                &login.username,
                password,
                &file,
                &kind,
                &source,
            )
            .await?;
            if outcome.duplicate {
                println!(
                    "this file was imported before as {kind} (import {}); nothing changed",
                    outcome.import_id
                );
            } else {
                println!(
                    "import {}: {} rows, {} facts new, {} corrected, {} unchanged, {} not in the register",
                    outcome.import_id,
                    outcome.rows,
                    outcome.inserted,
                    outcome.updated,
                    outcome.unchanged,
                    outcome.not_in_register
                );
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            // Read-only: a plain pool on whistle's schema, no migrations.
            let database = huimin_kit::config::DatabaseConfig::from_env(&env)?;
            let audit = huimin_whistle::config::AuditConfig::from_env(&env)?;
            let pool = huimin_kit::db::pool(&database, huimin_whistle::SCHEMA)?;
            match huimin_whistle::head::verify_published(&pool, &audit)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Ok(entries) => {
                    println!("audit chain intact: {entries} entries");
                    Ok(())
                }
                Err(broken) => anyhow::bail!("{broken}"),
            }
        }
        Command::Keys { .. } | Command::Token { .. } => {
            unreachable!("handled before telemetry starts")
        }
    }
}

fn identity(env: &Env) -> anyhow::Result<Identity> {
    Identity::connect(IdentityConfig::from_env(env)?)
}

/// Spells out every field violation, one per line, for a terminal user.
fn describe(error: huimin_identity::IdentityError) -> anyhow::Error {
    match error {
        huimin_identity::IdentityError::Core(huimin_kit::error::CoreError::Invalid {
            message,
            violations,
        }) => {
            let mut text = message;
            for v in violations {
                text.push_str(&format!("\n  {}: {}", v.field, v.description));
            }
            anyhow::anyhow!(text)
        }
        other => anyhow::Error::new(other),
    }
}

fn print_new_keys() {
    let random = || {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        B64.encode(key)
    };
    let signer = TokenSigner::generate();
    println!("HUIMIN_PII_HMAC_KEY={}", random());
    println!("HUIMIN_PII_ENCRYPTION_KEY={}", random());
    println!("HUIMIN_AUDIT_HMAC_KEY={}", random());
    println!("HUIMIN_BANK_HMAC_KEY={}", random());
    println!("HUIMIN_RECEIPT_HMAC_KEY={}", random());
    println!("HUIMIN_SESSION_KEY={}", random());
    println!("HUIMIN_TOKEN_SIGNING_KEY={}", B64.encode(signer.seed()));
    println!(
        "HUIMIN_TOKEN_PUBLIC_KEY={}",
        B64.encode(signer.verifier().public_key())
    );
    // The Official Account's server settings (Token, EncodingAESKey): made
    // here for the local WeChat; a real account's come from its admin page.
    let alphanumeric = |len: usize| -> String {
        rand::Rng::sample_iter(rand::rngs::OsRng, &rand::distributions::Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    };
    println!("HUIMIN_WECHAT_TOKEN={}", alphanumeric(32));
    println!("HUIMIN_WECHAT_AES_KEY={}", alphanumeric(43));
}

/// Seeds identity's persons and, in the same run, ledger's ten years of
/// payments for exactly those persons.
/// identity and ledger as `huimin seed` writes them, in-process, migrated.
pub async fn seed_services(env: &Env) -> anyhow::Result<(Identity, Ledger)> {
    let identity = Identity::connect(IdentityConfig::from_env(env)?)?;
    identity.migrate().await?;
    // Seeding writes ledger's tables directly and never calls identity: the
    // channel ledger's state needs is never used, so it takes no token.
    let ledger_config = huimin_ledger::LedgerConfig::from_env(env)?;
    let unused_identity = huimin_kit::peer::Peer::connect(
        &huimin_ledger::IDENTITY,
        "http://127.0.0.1:50051",
        None,
        None,
    )?;
    let ledger = Ledger::new(
        &ledger_config,
        huimin_kit::cache::Cache::new(&ledger_config.redis),
        unused_identity,
    )?;
    ledger.migrate().await?;
    Ok((identity, ledger))
}

async fn seed(env: &Env, scale: Scale, if_empty: bool, clean: bool) -> anyhow::Result<()> {
    let (identity, ledger) = seed_services(env).await?;
    let today = chrono::Local::now().date_naive();
    let Some(report) = huimin_demo::seed::county(&identity, scale, today).await? else {
        if if_empty {
            println!("database already has persons; nothing seeded");
            return Ok(());
        }
        anyhow::bail!("database already has persons; seed only fills an empty county");
    };
    println!(
        "seeded {} persons in {} households ({} facts) in {:.1}s",
        report.persons,
        report.households,
        report.facts,
        report.elapsed.as_secs_f64()
    );
    match huimin_demo::seed::payments(&identity, &ledger, scale, report.persons, today, clean)
        .await?
    {
        Some(payments) => {
            println!(
                "seeded {} payments ({} yuan) in {:.1}s; planted irregularities:",
                payments.payments,
                payments.total_fen / 100,
                payments.elapsed.as_secs_f64()
            );
            for (kind, person_key, program, period) in &payments.planted {
                println!(
                    "  {:<20} {} {} {}",
                    kind.as_str(),
                    huimin_kit::pii::PersonKey::from_bytes(*person_key).to_hex(),
                    program,
                    period
                );
            }
            if !payments.demo_citizens.is_empty() {
                // Synthetic persons made by the seed, not a register's: printed so a
                // newcomer can bind one on the local WeChat (scripts/up shows them again).
                println!("demo citizens (synthetic) to bind on the local WeChat:");
                for citizen in &payments.demo_citizens {
                    println!(
                        "  绑定 {} {}   (village {}, 农村低保 last month {}.{:02} yuan)",
                        citizen.id_number,
                        citizen.name,
                        citizen.village_code,
                        citizen.last_dibao_fen / 100,
                        citizen.last_dibao_fen % 100
                    );
                }
            }
        }
        None => println!("ledger already has payments; none seeded"),
    }
    let checked = huimin_demo::seed::checks(&identity, &ledger).await?;
    println!(
        "mirrored {} facts into ledger; cross-checks found {} findings in {:.1}s:",
        checked.facts,
        checked.outcome.found,
        checked.outcome.elapsed_ms as f64 / 1000.0
    );
    for (rule, count) in &checked.by_rule {
        println!("  {rule:<24} {count}");
    }
    Ok(())
}
