//! Composition of huimin's services into one process, shared by the binary
//! and the integration tests so both start exactly the same code.

#![forbid(unsafe_code)]

pub mod client;
pub mod commands;

use std::str::FromStr;

use huimin_kit::{
    component::{Component, Schema},
    config::Env,
};

pub use huimin_kit::app::App;

/// Every part of huimin, in start order. Adding a component is one line here.
pub const COMPONENTS: &[Component] = &[
    huimin_identity::COMPONENT,
    huimin_ledger::COMPONENT,
    huimin_registry::COMPONENT,
    huimin_whistle::COMPONENT,
    huimin_gateway::COMPONENT,
];

/// Which components a process runs: one by name, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    One(&'static str),
    /// Every component in one process.
    All,
}

impl Services {
    /// The components selected, from [`COMPONENTS`].
    pub fn components(self) -> Vec<Component> {
        COMPONENTS
            .iter()
            .filter(|c| match self {
                Self::One(name) => c.name == name,
                Self::All => true,
            })
            .copied()
            .collect()
    }
}

impl FromStr for Services {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(Self::All);
        }
        match COMPONENTS.iter().find(|c| c.name == s) {
            Some(component) => Ok(Self::One(component.name)),
            None => {
                let names: Vec<&str> = COMPONENTS.iter().map(|c| c.name).collect();
                Err(format!(
                    "unknown service {s:?}; this build serves: {}, all",
                    names.join(", ")
                ))
            }
        }
    }
}

/// Builds the selected components into one process: configuration first,
/// then migrations, then the sockets (see [`App::build`]).
pub async fn app(env: &Env, services: Services) -> anyhow::Result<App> {
    App::build(env, &services.components()).await
}

/// Every schema with its migrations, as `huimin migrate` applies them.
pub fn schemas() -> impl Iterator<Item = Schema> {
    COMPONENTS.iter().filter_map(|c| c.schema)
}

/// Applies every component's migrations, each in its own schema.
pub async fn migrate_all(env: &Env) -> anyhow::Result<()> {
    huimin_kit::app::migrate(env, COMPONENTS).await
}

/// The README's table of who may call each RPC, generated from the
/// components' policies (a test keeps README.md equal to it).
pub fn access_table() -> String {
    use huimin_kit::auth::Access;
    let mut table = String::from("| RPC | who may call it |\n|---|---|\n");
    for component in COMPONENTS {
        for (path, access) in (component.policy)().rules() {
            let method = path.trim_start_matches('/').trim_start_matches("huimin.");
            let who = match access {
                Access::Public => "anyone, without a token".to_owned(),
                _ => {
                    let (roles, services) = access.admitted();
                    roles
                        .iter()
                        .map(|role| role.as_str().to_owned())
                        .chain(services.iter().map(|name| format!("service `{name}`")))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            table.push_str(&format!("| `{method}` | {who} |\n"));
        }
    }
    table
}

#[cfg(test)]
mod tests {
    /// Where the generated table sits in README.md.
    const BEGIN: &str = "<!-- access table: generated from the policies, `HUIMIN_UPDATE_README=1 cargo test -p huimin readme` rewrites it -->\n";
    const END: &str = "<!-- end of access table -->";

    #[test]
    fn readme_access_table_matches_the_policies() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md is readable");
        let start = readme
            .find(BEGIN)
            .expect("README has the access table marker")
            + BEGIN.len();
        let end = readme[start..]
            .find(END)
            .expect("README ends the access table")
            + start;
        let expected = super::access_table();
        if std::env::var_os("HUIMIN_UPDATE_README").is_some() {
            let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).expect("README.md is writable");
            return;
        }
        assert_eq!(
            &readme[start..end],
            expected,
            "README's access table differs from the policies; rerun with HUIMIN_UPDATE_README=1"
        );
    }
}
