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

    /// Where secrets live: the OS keyring (`os`) or Keyway's encrypted file in the data dir
    /// (`file`), overriding the config's `secrets` [default: os, or file where no OS keyring
    /// can be reached]
    #[arg(long, global = true, env = "KEYWAY_SECRETS", value_name = "STORE", value_parser = ["os", "file"])]
    pub secrets: Option<String>,

    /// A file holding the passphrase of the encrypted secrets file, for when nobody can type
    /// it (services, scripts)
    #[arg(
        long,
        global = true,
        env = "KEYWAY_SECRETS_KEY_FILE",
        value_name = "PATH"
    )]
    pub secrets_key_file: Option<PathBuf>,

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
    /// Print the default key that tools send to Keyway (only the key); or add, list, revoke
    /// and limit keys of their own for each tool.
    #[command(args_conflicts_with_subcommands = true)]
    ClientKey {
        /// Replace the default key with a new one first (tools using the old key stop working).
        #[arg(long)]
        rotate: bool,
        #[command(subcommand)]
        command: Option<ClientKeyCommand>,
    },
    /// What requests used and cost, per client key, account, model or day.
    Usage(UsageArgs),
    /// Send requests for some models to another provider, family or model.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Print the token that guards the management API (only the token).
    ManagementToken {
        /// Replace it with a new one first (the old one stops working at once, in a running
        /// Keyway too; open the dashboard again with `keyway dashboard-url`).
        #[arg(long)]
        rotate: bool,
    },
    /// Print the address of the running instance's dashboard, with its token.
    DashboardUrl {
        /// Open it in the browser too.
        #[arg(long)]
        open: bool,
    },
    /// Show whether Keyway is running, its config health and every account's state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List the conversations bound to accounts now: client, account, requests, cache use.
    Sessions {
        #[arg(long)]
        json: bool,
    },
    /// Move secrets between the OS keyring and the encrypted file.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run Keyway headless as a service of your session: started at login (or boot, with
    /// lingering), restarted on failure, logging to the journal.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print the manual page (roff) on stdout, for packages.
    #[command(hide = true)]
    Man,
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Move every secret (accounts, client key, management token) to the other store, verify
    /// each, and record the choice in the config. Keyway must not be running.
    Migrate {
        /// The store to move them to.
        #[arg(long, value_parser = ["os", "file"])]
        to: String,
    },
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Requests for models matching GLOB go to TARGET: provider[/family][:model], e.g.
    /// `keyway alias set 'claude-haiku-*' deepseek:deepseek-v4-flash`.
    Set { glob: String, target: String },
    /// List the aliases in the order they are tried.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove the alias of GLOB.
    Remove { glob: String },
}

#[derive(Subcommand)]
pub enum ClientKeyCommand {
    /// Add a key for one tool; prints only the new key.
    Add {
        /// What the key is for, e.g. "Claude Code".
        #[arg(long)]
        label: String,
    },
    /// List the keys (never their secrets), with today's spend when Keyway is running.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: requests with it are refused from now on.
    Revoke { id: String },
    /// Set or clear a key's limits; the options given change, the others stay.
    Limit(LimitArgs),
}

#[derive(Args)]
pub struct LimitArgs {
    /// The key's id (`default` for the default key).
    pub id: String,
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Tokens (input and output) per minute.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Spend per local day, in USD at API prices.
    #[arg(long, value_name = "USD")]
    pub daily_usd: Option<f64>,
    /// Spend per calendar month, in USD at API prices.
    #[arg(long, value_name = "USD")]
    pub monthly_usd: Option<f64>,
    /// Budgets only warn (notification, dashboard banner) instead of refusing requests;
    /// `--warn-only=false` makes them refuse again.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub warn_only: Option<bool>,
    /// Remove every limit of the key.
    #[arg(long, conflicts_with_all = ["rpm", "tpm", "daily_usd", "monthly_usd", "warn_only"])]
    pub clear: bool,
}

#[derive(Args)]
pub struct UsageArgs {
    /// How far back: a number of local days, e.g. `7d` (today is `1d`).
    #[arg(long, default_value = "7d", value_name = "DAYS")]
    pub since: String,
    /// Group by client key, account, model or day.
    #[arg(long, default_value = "key", value_parser = ["key", "account", "model", "day"])]
    pub by: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Write and start the service (a systemd user unit on Linux, a launchd agent on macOS)
    /// running `keyway --headless` with this config, secret store and `--listen`.
    Install {
        /// Print the unit instead of installing it.
        #[arg(long)]
        print: bool,
    },
    /// Stop the service and remove it.
    Uninstall,
    /// Whether the service is installed, enabled and running.
    Status,
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add an API-key account; the key is read from stdin (hidden when typed).
    Add(AddAccount),
    /// Log in to a subscription (Claude, ChatGPT): in the browser, by pasting a code, or with a
    /// device code.
    Login(LoginArgs),
    /// Import the login that Claude Code or Codex CLI already holds.
    Import(ImportArgs),
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
    /// Set or clear what the account's tier allows; the options given change, the others stay.
    /// At a limit the account is skipped (the others serve) until the limit frees.
    Limit(AccountLimitArgs),
}

#[derive(Args)]
pub struct AccountLimitArgs {
    /// The account's id (`keyway account list` shows them).
    pub id: String,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,
    /// Requests sent per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Tokens (input and output) per minute.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Remove every limit of the account.
    #[arg(long, conflicts_with_all = ["max_concurrent", "rpm", "tpm"])]
    pub clear: bool,
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

#[derive(Args)]
pub struct LoginArgs {
    /// anthropic (Claude Pro/Max) or openai (ChatGPT/Codex).
    pub provider: String,
    #[arg(long)]
    pub label: String,
    /// ChatGPT only: log in on any device with a code instead of a browser redirect.
    #[arg(long)]
    pub device_code: bool,
    /// Do not open a browser here; print the URL (Claude then shows a code to paste back).
    #[arg(long)]
    pub no_browser: bool,
    /// Confirm the provider's terms-of-use risk without being asked.
    #[arg(long)]
    pub accept_terms_risk: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// claude-code or codex-cli.
    pub source: String,
    /// The credentials file [default: where the CLI keeps it]
    #[arg(long, value_name = "PATH")]
    pub from: Option<std::path::PathBuf>,
    #[arg(long)]
    pub label: Option<String>,
    /// Confirm the provider's terms-of-use risk without being asked.
    #[arg(long)]
    pub accept_terms_risk: bool,
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
    /// round_robin, weighted_round_robin, random, weighted_random, priority, most_available,
    /// least_busy or fastest.
    #[arg(long)]
    pub strategy: String,
    /// Member accounts in order, comma-separated [default: all enabled accounts of the provider]
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Per-account weights for this policy: id=N,id=N
    #[arg(long, value_delimiter = ',')]
    pub weights: Vec<String>,
    /// session (a conversation stays on its account, its prompt cache warm) or request (every
    /// request picked on its own).
    #[arg(long, default_value = "session", value_parser = ["session", "request"])]
    pub spread: String,
    /// client (sessions as the clients name them) or prefix (also group requests by a hash
    /// of their system prompt and first user turn).
    #[arg(long, default_value = "client", value_parser = ["client", "prefix"])]
    pub affinity: String,
    /// Forget a session's account after this long without a request.
    #[arg(long, default_value_t = keyway_core::session::DEFAULT_IDLE_SECS, value_name = "SECS")]
    pub session_idle_secs: u64,
    /// Where requests go when these accounts cannot serve them, in order (repeatable):
    /// provider[/family][:model], e.g. `openrouter:anthropic/claude-sonnet-4.5`; prefix
    /// `context_window=` (or `rate_limit=`, `server_error=`) for a step that takes only that
    /// kind of failure; `none` for no chain.
    #[arg(long, value_name = "STEP")]
    pub fallback: Vec<String>,
}
