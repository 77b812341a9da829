//! Field checks shared by the API and registration, each naming the field it rejects.

use crate::Error;

/// Names: 1 to 128 characters of letters, digits, `_`, `-`, `.` and `:`, starting with a letter or digit.
pub fn name(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > 128 {
        return Err(Error::invalid(field, "must be at most 128 characters"));
    }
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')) {
        return Err(Error::invalid(
            field,
            format!("`{value}` must start with a letter or digit and use only letters, digits, `_`, `-`, `.` and `:`"),
        ));
    }
    Ok(())
}

pub fn max_len(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<(), Error> {
    if value < min || value > max {
        return Err(Error::invalid(field, format!("{value} is out of range {min}..={max}")));
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a host and no credentials, returned in normal form without a
/// trailing slash (`HTTP://Host:80/` becomes `http://host`).
///
/// The normal form is what gets stored and echoed back, so every client reads the same URL the scheduler calls.
pub fn http_url(field: &str, value: &str) -> Result<String, Error> {
    let invalid = |why: &str| Error::invalid(field, format!("`{value}` {why}"));
    if value.len() > 2048 {
        return Err(Error::invalid(field, "must be at most 2048 bytes"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(invalid("is not a valid URL: it contains whitespace, a control character or a backslash"));
    }
    let url = url::Url::parse(value).map_err(|error| invalid(&format!("is not a valid URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials; use `auth.executor_secret` to sign requests"));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a #fragment"));
    }
    let normal = url.as_str();
    Ok(if url.query().is_none() { normal.trim_end_matches('/') } else { normal }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("name", "daily_report").is_ok());
        assert!(name("name", "data-processor.v2:eu").is_ok());
        assert_eq!(name("name", "").unwrap_err().to_string(), "invalid `name`: must not be empty");
        assert!(name("name", "_x").is_err());
        assert!(name("name", "a b").is_err());
        assert!(name("name", &"a".repeat(129)).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(http_url("base_url", "http://localhost:9090").unwrap(), "http://localhost:9090");
        assert_eq!(http_url("base_url", "HTTP://Host:80/").unwrap(), "http://host");
        assert_eq!(http_url("base_url", "https://h/x/").unwrap(), "https://h/x");
        assert_eq!(http_url("base_url", "http://[::1]:9090").unwrap(), "http://[::1]:9090");
        assert_eq!(http_url("base_url", "http://h/?a=1").unwrap(), "http://h/?a=1");
        assert_eq!(http_url("base_url", "http:///x").unwrap(), "http://x");
        for bad in [
            "ftp://h",
            "http://",
            "http://a b",
            "http://a[",
            "http://a]b/",
            "http://[x]/",
            "http://a\\[x",
            "http://u:p@h/",
            "http://u@h/",
            "http://h/#f",
            "localhost:9090",
            "",
        ] {
            assert!(http_url("base_url", bad).is_err(), "{bad}");
        }
        assert_eq!(
            http_url("base_url", "http://u:p@h/").unwrap_err().to_string(),
            "invalid `base_url`: `http://u:p@h/` must not carry credentials; use `auth.executor_secret` to sign requests"
        );
    }
}
