//! `berth admin`: accounts, users, access keys and identity policies.
//!
//! Output goes to stdout as JSON (lists and records) or, for a new access key, in AWS
//! shared-credentials format so it can be saved as a credentials file. A secret is printed
//! only by `create-access-key`, once, and never logged.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use berth_registry::Registry;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an account; prints its id.
    CreateAccount {
        /// The name to show for it.
        #[arg(long)]
        name: String,
        /// A 12-digit id [default: a new random one].
        #[arg(long)]
        id: Option<String>,
    },
    /// List accounts.
    ListAccounts,
    /// Create a user in an account.
    CreateUser {
        #[arg(long)]
        user: String,
        /// [default: the registry's default account]
        #[arg(long)]
        account: Option<String>,
    },
    /// Delete a user with its access keys and policies.
    DeleteUser {
        #[arg(long)]
        user: String,
        #[arg(long)]
        account: Option<String>,
    },
    /// List the users of an account.
    ListUsers {
        #[arg(long)]
        account: Option<String>,
    },
    /// Create an access key for a user; prints it in AWS shared-credentials format.
    CreateAccessKey {
        #[arg(long)]
        user: String,
        #[arg(long)]
        account: Option<String>,
        /// The profile name to print [default: default].
        #[arg(long, default_value = "default")]
        profile: String,
    },
    /// Delete an access key.
    DeleteAccessKey {
        #[arg(long)]
        id: String,
    },
    /// List a user's access key ids.
    ListAccessKeys {
        #[arg(long)]
        user: String,
        #[arg(long)]
        account: Option<String>,
    },
    /// Attach an identity policy to a user: a managed policy by name
    /// (AdministratorAccess, AmazonEC2ContainerRegistryReadOnly, AmazonEC2ContainerRegistryPowerUser,
    /// AmazonEC2ContainerRegistryFullAccess), or a document from a file (`-` for stdin).
    AttachPolicy {
        #[arg(long)]
        user: String,
        #[arg(long)]
        account: Option<String>,
        /// The policy's name.
        #[arg(long)]
        name: String,
        /// A JSON policy document file; without it `name` must be a managed policy.
        #[arg(long)]
        document: Option<String>,
    },
    /// Remove a policy from a user.
    DetachPolicy {
        #[arg(long)]
        user: String,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        name: String,
    },
    /// List a user's policies with their documents.
    ListPolicies {
        #[arg(long)]
        user: String,
        #[arg(long)]
        account: Option<String>,
    },
    /// Storage used, per repository and in total (blobs shared by repositories count in each,
    /// and once in the total).
    Storage,
    /// Read every stored blob back and check it against its digest, at once and unthrottled.
    /// Damaged blobs are moved aside (a push of the blob stores it again); prints what was
    /// found and exits with status 1 when anything was damaged or missing.
    Verify,
    /// Apply lifecycle policies now (of one repository, or of all); prints what was expired.
    LifecycleRun {
        #[arg(long)]
        repository: Option<String>,
        /// The registry (account) of `--repository` [default: the registry's default account]
        #[arg(long)]
        account: Option<String>,
    },
    /// The background workers of the server running on this data directory (or of its last
    /// run): each one's state (idle, running, failed, waiting-for-lease, stopped), last run,
    /// last outcome, and counts of runs and errors.
    Workers,
    /// Copy an embedded data directory (filesystem blobs and SQLite) into the stores this
    /// configuration names (PostgreSQL and S3, or another data directory), verifying every blob
    /// and manifest on the way. Resumable: after an interruption, run it again; a run over a
    /// complete copy changes nothing. The destination gets the source's server key and default
    /// account (refused when it has others). Stop the server on the source first. Progress goes
    /// to stderr and a JSON summary to stdout; exits with status 1 when anything was not copied.
    Migrate {
        /// The data directory to copy.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The source's default account [default: from <FROM>/account-id]
        #[arg(long)]
        from_account: Option<String>,
        /// The source's server key [default: <FROM>/token.key]
        #[arg(long)]
        from_token_key: Option<std::path::PathBuf>,
    },
    /// What lifecycle policies expired, newest first.
    LifecycleHistory {
        #[arg(long)]
        repository: Option<String>,
        /// The registry (account) of `--repository` [default: the registry's default account]
        #[arg(long)]
        account: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The vulnerability database scans match against.
    Vulndb {
        #[command(subcommand)]
        command: VulndbCommand,
    },
    /// Scanning: this server's counters.
    Scan {
        #[command(subcommand)]
        command: ScanCommand,
    },
    /// The software bill of materials (CycloneDX 1.5 JSON) of a scanned image: every package
    /// the scan found, with the layer and file it came from.
    Sbom {
        #[arg(long)]
        repository: String,
        /// The image's manifest digest.
        #[arg(long)]
        digest: String,
        /// The registry (account) of `--repository` [default: the registry's default account]
        #[arg(long)]
        account: Option<String>,
        /// Only `cyclonedx` (CycloneDX 1.5 JSON).
        #[arg(long, default_value = "cyclonedx")]
        format: String,
    },
}

#[derive(Subcommand)]
pub enum VulndbCommand {
    /// Imports OSV data (osv.dev `all.zip` dumps, directories of `*.json`, or single files),
    /// replacing the data serving now as a whole once it is valid: a failed import changes
    /// nothing. Every image under CONTINUOUS_SCAN is then matched again. Prints a JSON summary.
    Import {
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// What is loaded (JSON).
    Status,
}

#[derive(Subcommand)]
pub enum ScanCommand {
    /// The scan counters of the servers that ran on this data directory (layers read from
    /// storage, layers whose inventory was reused, scans, re-matches), each as of its last scan,
    /// added up over every process (and every node of a cluster sharing the directory).
    Stats,
}

fn expirations(list: &[berth_registry::Expiration]) -> serde_json::Value {
    json!({ "Expired": list.iter().map(|e| json!({
        "registryId": e.repository.registry.as_str(),
        "repositoryName": e.repository.name.as_str(),
        "imageDigest": e.digest.as_str(),
        "imageTags": e.tags,
        "imagePushedAt": e.pushed_at,
        "appliedRulePriority": e.rule_priority,
        "expiredAt": e.expired_at,
    })).collect::<Vec<_>>() })
}

fn repository(account: &str, name: Option<&str>) -> anyhow::Result<Option<berth_types::RepositoryKey>> {
    let Some(n) = name else { return Ok(None) };
    let account = berth_types::AccountId::parse(account).map_err(|e| anyhow::anyhow!("--account: {e}"))?;
    let name = berth_types::RepositoryName::parse(n).map_err(|e| anyhow::anyhow!("repository {n:?}: {e}"))?;
    Ok(Some(berth_types::RepositoryKey::new(account, name)))
}

fn print(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn read_document(source: &str) -> anyhow::Result<String> {
    let path = source.strip_prefix("file://").unwrap_or(source);
    if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the policy from stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
    }
}

/// `scan stats`: the scan workers' counters, one file per server process that ran on this data
/// directory (every node of a cluster sharing it), added up.
pub fn scan_stats(dir: &Path) -> anyhow::Result<()> {
    let keys = ["layer_reads", "layer_hits", "scans", "rematched"];
    let mut sums = [0u64; 4];
    let mut processes = 0u64;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e.collect::<Result<Vec<_>, _>>().with_context(|| format!("reading {}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
        for (sum, key) in sums.iter_mut().zip(keys) {
            *sum += v[key].as_u64().unwrap_or(0);
        }
        processes += 1;
    }
    let mut out = serde_json::Map::new();
    for (sum, key) in sums.iter().zip(keys) {
        out.insert(key.to_owned(), json!(sum));
    }
    out.insert("processes".to_owned(), json!(processes));
    print(&serde_json::Value::Object(out))
}

/// `workers`: the status file the server keeps, with whether its writer still runs.
pub fn workers(status_file: &Path) -> anyhow::Result<()> {
    let status = match berth_workers::StatusFile::read(status_file) {
        Ok(s) => s,
        Err(e) if !status_file.exists() => {
            return Err(e.context("no server has run on this data directory yet"));
        }
        Err(e) => return Err(e),
    };
    // A server killed without a chance to say so leaves `running: true` behind.
    let alive = status.running && Path::new(&format!("/proc/{}", status.pid)).exists();
    print(&json!({
        "ServerRunning": alive,
        "Pid": status.pid,
        "UpdatedAt": status.updated_at_ms,
        "Workers": status.workers,
    }))
}

/// Runs one command; `default_account` stands in where `--account` is not given.
pub async fn run(registry: &Registry, default_account: &str, command: AdminCommand) -> anyhow::Result<()> {
    let acct = |a: &Option<String>| a.clone().unwrap_or_else(|| default_account.to_owned());
    match command {
        AdminCommand::CreateAccount { name, id } => {
            let a = registry.identity.create_account(id.as_deref(), &name).await?;
            print(&json!({ "AccountId": a.id, "Name": a.name }))
        }
        AdminCommand::ListAccounts => {
            let accounts = registry.identity.accounts().await?;
            print(&json!({
                "Accounts": accounts.iter().map(|a| json!({ "AccountId": a.id, "Name": a.name })).collect::<Vec<_>>()
            }))
        }
        AdminCommand::CreateUser { user, account } => {
            let u = registry.identity.create_user(&acct(&account), &user).await?;
            print(&json!({ "User": { "UserName": u.name, "AccountId": u.account,
                "Arn": berth_registry::identity::user_arn(&u.account, &u.name) } }))
        }
        AdminCommand::DeleteUser { user, account } => Ok(registry.identity.delete_user(&acct(&account), &user).await?),
        AdminCommand::ListUsers { account } => {
            let account = acct(&account);
            let users = registry.identity.users(&account).await?;
            print(&json!({ "Users": users.iter().map(|u| json!({ "UserName": u.name,
                "Arn": berth_registry::identity::user_arn(&u.account, &u.name) })).collect::<Vec<_>>() }))
        }
        AdminCommand::CreateAccessKey { user, account, profile } => {
            let (id, secret) = registry.identity.create_access_key(&acct(&account), &user).await?;
            println!("[{profile}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}");
            Ok(())
        }
        AdminCommand::DeleteAccessKey { id } => Ok(registry.identity.delete_access_key(&id).await?),
        AdminCommand::ListAccessKeys { user, account } => {
            let ids = registry.identity.access_keys(&acct(&account), &user).await?;
            print(&json!({ "AccessKeyIds": ids }))
        }
        AdminCommand::AttachPolicy { user, account, name, document } => {
            let document = document.as_deref().map(read_document).transpose()?;
            Ok(registry.identity.attach_user_policy(&acct(&account), &user, &name, document.as_deref()).await?)
        }
        AdminCommand::DetachPolicy { user, account, name } => {
            Ok(registry.identity.detach_user_policy(&acct(&account), &user, &name).await?)
        }
        AdminCommand::ListPolicies { user, account } => {
            let policies = registry.identity.user_policies(&acct(&account), &user).await?;
            let docs: Vec<_> = policies
                .iter()
                .map(|(name, doc)| {
                    let doc = serde_json::from_str::<serde_json::Value>(doc).unwrap_or_else(|_| json!(doc));
                    json!({ "PolicyName": name, "PolicyDocument": doc })
                })
                .collect();
            print(&json!({ "Policies": docs }))
        }
        AdminCommand::Storage => {
            let u = registry.maintenance.storage_usage().await?;
            print(&json!({
                "Repositories": u.repositories.iter().map(|r| json!({
                    "registryId": r.repository.registry.as_str(),
                    "repositoryName": r.repository.name.as_str(),
                    "manifests": r.manifests,
                    "manifestBytes": r.manifest_bytes,
                    "blobs": r.blobs,
                    "blobBytes": r.blob_bytes,
                })).collect::<Vec<_>>(),
                "TotalBlobs": u.blobs,
                "TotalBlobBytes": u.blob_bytes,
                "TotalManifestBytes": u.manifest_bytes,
            }))
        }
        AdminCommand::Verify => {
            let r = registry.maintenance.scrub(0, || false).await?;
            print(&json!({
                "CheckedBlobs": r.checked,
                "CheckedBytes": r.bytes,
                "Damaged": r.damaged.iter().map(berth_types::Digest::as_str).collect::<Vec<_>>(),
                "Missing": r.missing.iter().map(berth_types::Digest::as_str).collect::<Vec<_>>(),
            }))?;
            if r.damaged.is_empty() && r.missing.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{} damaged and {} missing blobs; push them again to repair them",
                    r.damaged.len(),
                    r.missing.len()
                ))
            }
        }
        AdminCommand::LifecycleRun { repository: name, account } => {
            let expired = match repository(&acct(&account), name.as_deref())? {
                Some(repo) => registry.lifecycle.run(&repo).await?,
                None => registry.lifecycle.run_all().await?,
            };
            print(&expirations(&expired))
        }
        AdminCommand::Vulndb { command: VulndbCommand::Import { paths } } => {
            let summary = registry.scanning.import_vulndb(paths).await?;
            print(&serde_json::to_value(&summary)?)
        }
        AdminCommand::Vulndb { command: VulndbCommand::Status } => {
            print(&serde_json::to_value(registry.scanning.vulndb_status().await?)?)
        }
        AdminCommand::Sbom { repository: name, digest, account, format } => {
            anyhow::ensure!(format == "cyclonedx", "--format: only cyclonedx is supported");
            let repo = repository(&acct(&account), Some(&name))?.ok_or_else(|| anyhow::anyhow!("--repository"))?;
            let digest = berth_types::Digest::parse(&digest).map_err(|e| anyhow::anyhow!("--digest: {e}"))?;
            print(&registry.scanning.sbom(&repo, &digest).await?)
        }
        AdminCommand::Scan { .. } => anyhow::bail!("`scan stats` reads the counters file and needs no registry"),
        AdminCommand::Workers => anyhow::bail!("`workers` reads the status file and needs no registry"),
        AdminCommand::Migrate { .. } => anyhow::bail!("`migrate` opens the stores itself"),
        AdminCommand::LifecycleHistory { repository: name, account, limit } => {
            let repo = repository(&acct(&account), name.as_deref())?;
            print(&expirations(&registry.lifecycle.history(repo.as_ref(), limit).await?))
        }
    }
}
