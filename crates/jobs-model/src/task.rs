//! Tasks: what to run, when, where and how.

use serde::{Deserialize, Serialize};

use crate::{Error, Parameters, TaskId, Timestamp};

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every accepted word, in order.
            pub const ALL: &'static [&'static str] = &[$($word),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(text: &str) -> Result<Self, $crate::Error> {
                match text {
                    $($word => Ok(Self::$variant),)+
                    _ => Err($crate::Error::invalid(
                        stringify!($name),
                        format!("`{text}` is not one of {}", Self::ALL.join(", ")),
                    )),
                }
            }
        }
    };
}
pub(crate) use word_enum;

word_enum!(
    /// What happens to a fire while an earlier execution of the same task still runs.
    #[derive(Default)]
    ExecutionMode {
        Sequential => "sequential",
        #[default]
        Parallel => "parallel",
        Skip => "skip",
        Replace => "replace",
    }
);

word_enum!(
    /// What to do with fire slots that are more than `misfire_grace` late.
    #[derive(Default)]
    MisfirePolicy {
        #[default]
        FireOnce => "fire_once",
        FireAll => "fire_all",
        Skip => "skip",
    }
);

word_enum!(
    /// How the delay between retries grows.
    BackoffKind {
        Fixed => "fixed",
        Exponential => "exponential",
    }
);

/// Delay before a retry: `delay_seconds`, doubled per attempt when exponential, capped at `max_delay_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryBackoff {
    #[serde(rename = "type")]
    pub kind: BackoffKind,
    #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
    pub delay_seconds: u32,
    /// At least `delay_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
    pub max_delay_seconds: Option<u32>,
}

/// The user-controlled fields of a task, as created or replaced through the API or a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskSpec {
    pub name: String,
    pub description: String,
    pub cron_expression: Option<String>,
    pub timezone: String,
    pub execution_mode: ExecutionMode,
    pub load_balance_strategy: String,
    pub max_retry: u32,
    pub retry_backoff: Option<RetryBackoff>,
    pub timeout_seconds: u32,
    pub misfire_policy: MisfirePolicy,
    /// At most how many late slots of one gap (a failover, an outage, an overload) are fired when the planner
    /// catches up, the newest ones; the older are recorded `missed`. `None`: every slot less than the misfire
    /// grace late is fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_catchup: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Parameters,
    /// The executor group (registered `name`) that runs it; `None`: any instance that declared the task.
    pub executor: Option<String>,
    pub enabled: bool,
    /// Tasks triggered (trigger type `chain`) when an execution of this one ends `success`.
    #[serde(default)]
    pub on_success: Vec<String>,
    /// Tasks triggered when an execution of this one ends `failed` or `timeout`, after its retries.
    #[serde(default)]
    pub on_failure: Vec<String>,
}

impl TaskSpec {
    pub const DEFAULT_TIMEOUT_SECONDS: u32 = 300;
    pub const DEFAULT_STRATEGY: &'static str = "round_robin";

    /// A task with the defaults for everything but its name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            cron_expression: None,
            timezone: "UTC".to_owned(),
            execution_mode: ExecutionMode::default(),
            load_balance_strategy: Self::DEFAULT_STRATEGY.to_owned(),
            max_retry: 0,
            retry_backoff: None,
            timeout_seconds: Self::DEFAULT_TIMEOUT_SECONDS,
            misfire_policy: MisfirePolicy::default(),
            max_catchup: None,
            parameters: Parameters::new(),
            executor: None,
            enabled: true,
            on_success: Vec::new(),
            on_failure: Vec::new(),
        }
    }

    /// The tasks this one triggers when an execution ends with `status` (none for a status that triggers nothing).
    pub fn chained_by(&self, status: crate::ExecutionStatus) -> &[String] {
        match status {
            crate::ExecutionStatus::Success => &self.on_success,
            crate::ExecutionStatus::Failed | crate::ExecutionStatus::Timeout => &self.on_failure,
            _ => &[],
        }
    }

    /// Checks what can be checked without the cron parser and the strategy registry.
    pub fn validate(&self) -> Result<(), Error> {
        crate::validate::name("name", &self.name)?;
        crate::validate::max_len("description", &self.description, 4096)?;
        if let Some(executor) = &self.executor {
            crate::validate::name("executor", executor)?;
        }
        for (field, names) in [("on_success", &self.on_success), ("on_failure", &self.on_failure)] {
            crate::validate::range(field, names.len() as i64, 0, 32)?;
            for (index, name) in names.iter().enumerate() {
                crate::validate::name(&format!("{field}[{index}]"), name)?;
                if names[..index].contains(name) {
                    return Err(Error::invalid(field, format!("names `{name}` twice")));
                }
            }
        }
        crate::validate::range("max_retry", self.max_retry.into(), 0, 100)?;
        crate::validate::range("timeout_seconds", self.timeout_seconds.into(), 1, 7 * 86_400)?;
        if let Some(max_catchup) = self.max_catchup {
            crate::validate::range("max_catchup", max_catchup.into(), 0, 10_000)?;
        }
        if let Some(backoff) = &self.retry_backoff {
            crate::validate::range("retry_backoff.delay_seconds", backoff.delay_seconds.into(), 0, 86_400)?;
            if let Some(max) = backoff.max_delay_seconds {
                crate::validate::range(
                    "retry_backoff.max_delay_seconds",
                    max.into(),
                    backoff.delay_seconds.into(),
                    86_400,
                )?;
            }
        }
        Ok(())
    }
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: TaskId,
    #[serde(flatten)]
    pub spec: TaskSpec,
    /// The next cron fire the planner will write, `None` when paused or without a schedule.
    pub next_fire_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
