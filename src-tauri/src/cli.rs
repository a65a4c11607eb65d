//! The command line: a contract that scripts and docs rely on.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keyway",
    version,
    about = "One local endpoint for all your AI accounts."
)]
pub struct Cli {
    /// Config file [default: the platform config dir, e.g. ~/.config/keyway/config.toml]
    #[arg(long, global = true, env = "KEYWAY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Run the proxy and management API without a window.
    #[arg(long)]
    pub headless: bool,

    /// Listen address, overriding the config's `listen` (commands use it to find a running instance).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Add, list, remove, enable or disable accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Set, list or remove routing policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the key that tools must send to Keyway (only the key).
    ClientKey {
        /// Replace it with a new one first (tools using the old key stop working).
        #[arg(long)]
        rotate: bool,
    },
    /// Print the token that guards the management API (only the token).
    ManagementToken,
    /// Show whether Keyway is running, its config health and every account's state.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add an API-key account; the key is read from stdin (hidden when typed).
    Add(AddAccount),
    /// List accounts, with their live state when Keyway is running.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an account and its secret.
    Remove { id: String },
    /// Put an account back into rotation (also clears a cooldown or "needs attention").
    Enable { id: String },
    /// Take an account out of rotation.
    Disable { id: String },
}

#[derive(Args)]
pub struct AddAccount {
    /// anthropic, openai, google, or a provider defined in the config.
    pub provider: String,
    /// A name you will recognise, e.g. "Work".
    #[arg(long)]
    pub label: String,
    /// Share of traffic under weighted strategies.
    #[arg(long, default_value_t = 1)]
    pub weight: u32,
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Set the policy of `provider` (every family) or `provider/family`.
    Set(SetPolicy),
    /// List every (provider, family) and the policy serving it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a policy; its requests fall back to the provider-wide policy or round-robin.
    Remove { key: String },
}

#[derive(Args)]
pub struct SetPolicy {
    /// `provider` or `provider/family`, e.g. `anthropic/opus`.
    pub key: String,
    /// round_robin, weighted_round_robin, random, weighted_random or priority.
    #[arg(long)]
    pub strategy: String,
    /// Member accounts in order, comma-separated [default: all enabled accounts of the provider]
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Per-account weights for this policy: id=N,id=N
    #[arg(long, value_delimiter = ',')]
    pub weights: Vec<String>,
}
