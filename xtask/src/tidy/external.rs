//! Which packages may name which external crates, over `cargo metadata` (dev-dependencies are exempt).

use crate::tidy::dependencies;

/// The packages a rule applies to.
#[derive(Debug)]
enum Who {
    /// Only these packages may name the crates.
    Only(&'static [&'static str]),
    /// Every package but these may name the crates.
    Not(&'static [&'static str]),
}

/// One rule: `crates` may be named by `who`, because of `reason`.
#[derive(Debug)]
struct Rule {
    crates: &'static [&'static str],
    who: Who,
    reason: &'static str,
}

const BINS_AND_XTASK: &[&str] = &["scheduler", "example-executor", "xtask"];

const RULES: &[Rule] = &[
    Rule {
        crates: &["sea-orm", "sea-orm-migration", "sea-query"],
        who: Who::Only(&["jobs-storage", "jobs-migrations", "jobs-election"]),
        reason: "the database is reached through `Store`, which takes and returns model types; migrations own the \
                 schema, and the election holds its own lock connection (xtask uses `jobs_migrations::sea_orm`)",
    },
    Rule {
        crates: &["axum"],
        who: Who::Only(&["jobs-api", "jobs-executor"]),
        reason: "HTTP is served by the API and by the SDK's executor endpoints; the scheduler binary serves \
                 through `jobs_api::ApiServer`",
    },
    Rule {
        crates: &["figment"],
        who: Who::Only(BINS_AND_XTASK),
        reason: "config sections are plain serde structs; a binary assembles the layers",
    },
    Rule {
        crates: &["tracing-subscriber"],
        who: Who::Only(BINS_AND_XTASK),
        reason: "libraries emit events; only a binary decides where they go",
    },
    Rule {
        crates: &["anyhow"],
        who: Who::Only(BINS_AND_XTASK),
        reason: "libraries return typed errors with a kind; only binaries and xtask add context to any error",
    },
    Rule {
        crates: &["maud"],
        who: Who::Only(&["jobs-api"]),
        reason: "the web console's pages are templates of the API crate, served by the same router",
    },
    Rule {
        crates: &["tls-listener", "tokio-rustls"],
        who: Who::Only(&["jobs-api", "jobs-executor"]),
        reason: "only the API's and the SDK's listeners accept TLS connections",
    },
    Rule {
        crates: &["rustls-platform-verifier", "webpki-roots"],
        who: Who::Only(&["jobs-model"]),
        reason: "outgoing HTTPS trusts roots in one place, `jobs_model::tls::client_config`",
    },
    Rule {
        crates: &["sqlx"],
        who: Who::Only(&["jobs-storage"]),
        reason: "named only to turn on the drivers' TLS and RSA login; queries go through sea-orm",
    },
    Rule {
        crates: &["tokio", "sea-orm", "axum", "reqwest"],
        who: Who::Not(&["jobs-model"]),
        reason: "`jobs-model` does no I/O: its types and pure functions take time and input from their caller",
    },
];

#[test]
fn external_crates_are_named_only_where_allowed() {
    let packages = dependencies();
    let mut broken = Vec::new();
    for rule in RULES {
        let (Who::Only(listed) | Who::Not(listed)) = rule.who;
        for name in listed {
            assert!(
                packages.contains_key(*name),
                "tidy's rule for {:?} names `{name}`, which is no package",
                rule.crates
            );
        }
        for (package, deps) in &packages {
            let allowed = match rule.who {
                Who::Only(only) => only.contains(&package.as_str()),
                Who::Not(not) => !not.contains(&package.as_str()),
            };
            for krate in rule.crates.iter().filter(|krate| !allowed && deps.contains(**krate)) {
                broken.push(format!("`{package}` must not depend on `{krate}`: {}", rule.reason));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
