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

/// An absolute `http://` or `https://` URL with a host.
pub fn http_url(field: &str, value: &str) -> Result<(), Error> {
    let rest = value.strip_prefix("http://").or_else(|| value.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Err(Error::invalid(field, format!("`{value}` must start with http:// or https://")));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) || value.len() > 2048 {
        return Err(Error::invalid(field, format!("`{value}` is not a valid URL")));
    }
    Ok(())
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
        assert!(http_url("base_url", "http://localhost:9090").is_ok());
        assert!(http_url("base_url", "https://h/x").is_ok());
        assert!(http_url("base_url", "ftp://h").is_err());
        assert!(http_url("base_url", "http://").is_err());
        assert!(http_url("base_url", "http://a b").is_err());
    }
}
