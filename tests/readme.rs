//! The README's examples are the tested ones: its PHP blocks are cut from tests/php/.
use crate::php::php_dir;

/// The README's PHP blocks, each as its lines (trimmed).
fn readme_php_blocks() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in readme.lines().map(str::trim) {
        match (&mut block, line) {
            (None, "```php") => block = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(block.take()),
            (Some(b), l) => b.push(l.to_string()),
            (None, _) => {}
        }
    }
    blocks
}

/// Whether `block` is cut from `file`: its parts between `// ...` lines are
/// runs of the file's lines (indentation aside), in the file's order.
fn cut_from(block: &[String], file: &str) -> bool {
    let lines: Vec<&str> = file.lines().map(str::trim).collect();
    let mut from = 0;
    for part in block.split(|l| l == "// ...") {
        let found = (from..=lines.len().saturating_sub(part.len())).find(|&at| {
            lines[at..].starts_with(&part.iter().map(String::as_str).collect::<Vec<_>>())
        });
        match found {
            Some(at) => from = at + part.len(),
            None => return false,
        }
    }
    true
}

/// What a plugin author copies from the README is what these tests run:
/// every PHP block of the README is cut from a file of tests/php/.
#[test]
fn the_readme_php_is_cut_from_the_tested_files() {
    let files: Vec<(String, String)> = std::fs::read_dir(php_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "php"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    let blocks = readme_php_blocks();
    assert!(
        blocks.len() >= 4,
        "{} PHP blocks in the README",
        blocks.len()
    );
    for block in &blocks {
        let from = files.iter().find(|(_, text)| cut_from(block, text));
        assert!(
            from.is_some(),
            "this README PHP block is in no file of tests/php/:\n{}",
            block.join("\n")
        );
    }
}
