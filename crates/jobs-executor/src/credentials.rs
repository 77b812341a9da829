//! [`Credentials`]: what the executor proves itself with (an API token and the shared signing secret), never shown
//! in `Debug` output.

use std::fmt;
use std::sync::Arc;

/// The secret shared with the scheduler (`auth.executor_secret`) and an API token (one of `auth.api_tokens`).
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    /// Signs every request to the scheduler, and checks the scheduler's `/execute` and `/cancel`.
    pub(crate) secret: Option<Arc<[u8]>>,
    /// Sent as `Authorization: Bearer` on every request to the scheduler.
    pub(crate) api_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { "Some(***)" } else { "None" };
        f.debug_struct("Credentials")
            .field("secret", &format_args!("{}", hidden(self.secret.is_some())))
            .field("api_token", &format_args!("{}", hidden(self.api_token.is_some())))
            .finish()
    }
}
