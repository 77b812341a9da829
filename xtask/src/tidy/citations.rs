//! Comments and documents state their rules themselves: none cites the outside specification by section or file.

use crate::tidy::{files_ending_with, root};

/// How a citation of the outside specification is written; split so that this file does not match itself.
const CITATIONS: &[&str] = &[concat!("SPEC", " §"), concat!("SPEC", ".md")];

#[test]
fn nothing_cites_the_specification() {
    let root = root();
    let mut files = Vec::new();
    files_ending_with(&root, &[".rs", ".md"], &mut files);
    assert!(!files.is_empty());
    let mut citing = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&file).expect("readable file");
        for (number, line) in text.lines().enumerate() {
            if CITATIONS.iter().any(|citation| line.contains(citation)) {
                citing.push(format!("{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(citing.is_empty(), "state the rule instead of citing the specification:\n{}", citing.join("\n"));
}
