//! Compiles `data/books.json` into the crate as Rust data (`Catalog::embedded`), so
//! a binary that only uses the built-in catalog (the page's wasm) carries no JSON
//! parser for it. The file stays the one source: services may load another of the
//! same shape at start-up (`Catalog::from_json`), and a test checks that both
//! readings of the file agree.

use std::fmt::Write;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Book {
    id: String,
    title: String,
    author: String,
    genres: Vec<String>,
    year: u16,
    price_cents: u64,
    stock: u32,
}

fn main() {
    let path = "../data/books.json";
    println!("cargo::rerun-if-changed={path}");
    let json = std::fs::read_to_string(path).expect("data/books.json is readable");
    let books: Vec<Book> = serde_json::from_str(&json).expect("data/books.json is a list of books");
    let mut code = String::from("&[\n");
    for book in &books {
        // `{:?}` of a str is a Rust string literal.
        writeln!(
            code,
            "    EmbeddedBook {{ id: {:?}, title: {:?}, author: {:?}, genres: &{:?}, year: {}, price_cents: {}, stock: {} }},",
            book.id, book.title, book.author, book.genres, book.year, book.price_cents, book.stock
        )
        .unwrap();
    }
    code.push(']');
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded_catalog.rs");
    std::fs::write(out, code).unwrap();
}
