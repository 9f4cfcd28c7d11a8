//! The book catalog: what the shop sells, at what price, and the initial stock.
//!
//! The catalog ships as `data/books.json`; a copy is compiled in (as Rust data, by
//! `build.rs`, so the page's wasm needs no JSON parser for it) so the page and the
//! services agree on titles and prices without a lookup, and services may load
//! another file at start-up.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// A book's catalog id (`"1"` is Fourth Wing).
pub type BookId = String;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Book {
    pub id: BookId,
    pub title: String,
    pub author: String,
    pub genres: Vec<String>,
    pub year: u16,
    pub price_cents: u64,
    pub stock: u32,
}

impl Book {
    pub fn price(&self) -> Money {
        Money::from_cents(self.price_cents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    books: Vec<Book>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the catalog lists book id {0:?} twice")]
    DuplicateId(String),
    #[error("the catalog is empty")]
    Empty,
}

/// One book of `data/books.json` as `build.rs` writes it.
struct EmbeddedBook {
    id: &'static str,
    title: &'static str,
    author: &'static str,
    genres: &'static [&'static str],
    year: u16,
    price_cents: u64,
    stock: u32,
}

const EMBEDDED: &[EmbeddedBook] = include!(concat!(env!("OUT_DIR"), "/embedded_catalog.rs"));

impl Catalog {
    /// The catalog compiled into the binary (`data/books.json`; its tests check
    /// it is valid and the same as reading the file).
    pub fn embedded() -> Self {
        let books = EMBEDDED
            .iter()
            .map(|book| Book {
                id: book.id.to_owned(),
                title: book.title.to_owned(),
                author: book.author.to_owned(),
                genres: book.genres.iter().map(|genre| (*genre).to_owned()).collect(),
                year: book.year,
                price_cents: book.price_cents,
                stock: book.stock,
            })
            .collect();
        Self { books }
    }

    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        let books: Vec<Book> = serde_json::from_str(json)?;
        if books.is_empty() {
            return Err(CatalogError::Empty);
        }
        let mut seen = HashSet::new();
        if let Some(dup) = books.iter().find(|b| !seen.insert(b.id.as_str())) {
            return Err(CatalogError::DuplicateId(dup.id.clone()));
        }
        Ok(Self { books })
    }

    pub fn get(&self, id: &str) -> Option<&Book> {
        self.books.iter().find(|b| b.id == id)
    }

    pub fn books(&self) -> &[Book] {
        &self.books
    }

    /// Up to `limit` in-stock books to suggest for an order of `ordered` ids: first
    /// other books by the same authors, then books sharing a genre (more shared
    /// genres first), never a book already ordered. Deterministic: ties keep
    /// catalog order.
    pub fn suggest(&self, ordered: &[&str], limit: usize) -> Vec<&Book> {
        let ordered_books: Vec<&Book> = ordered.iter().filter_map(|id| self.get(id)).collect();
        let authors: HashSet<&str> = ordered_books.iter().map(|b| b.author.as_str()).collect();
        let genres: HashSet<&str> = ordered_books.iter().flat_map(|b| b.genres.iter().map(String::as_str)).collect();
        let mut ranked: Vec<(u8, usize, usize, &Book)> = self
            .books
            .iter()
            .enumerate()
            .filter(|(_, b)| b.stock > 0 && !ordered.contains(&b.id.as_str()))
            .filter_map(|(position, b)| {
                let shared = b.genres.iter().filter(|g| genres.contains(g.as_str())).count();
                if authors.contains(b.author.as_str()) {
                    Some((0, usize::MAX - shared, position, b))
                } else if shared > 0 {
                    Some((1, usize::MAX - shared, position, b))
                } else {
                    None
                }
            })
            .collect();
        ranked.sort_by_key(|&(tier, fewer_shared, position, _)| (tier, fewer_shared, position));
        ranked.into_iter().take(limit).map(|(_, _, _, b)| b).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_holds_the_seed_titles_under_ids_1_to_9() {
        let catalog = Catalog::embedded();
        let seed = [
            "Fourth Wing",
            "Iron Flame",
            "The Empyrean",
            "The Hunger Games",
            "Catching Fire",
            "Mockingjay",
            "Divergent",
            "Insurgent",
            "Allegiant",
        ];
        for (i, title) in seed.iter().enumerate() {
            assert_eq!(catalog.get(&(i + 1).to_string()).unwrap().title, *title);
        }
    }

    #[test]
    fn the_compiled_in_catalog_is_the_file_read_as_json() {
        let file = Catalog::from_json(include_str!("../../data/books.json")).expect("data/books.json is valid");
        assert_eq!(Catalog::embedded(), file);
        assert_eq!(file.books.len(), 23);
    }

    #[test]
    fn refuses_duplicate_ids() {
        let json = r#"[{"id":"1","title":"A","author":"X","genres":[],"year":2000,"priceCents":1,"stock":1},
                       {"id":"1","title":"B","author":"Y","genres":[],"year":2000,"priceCents":1,"stock":1}]"#;
        assert!(matches!(Catalog::from_json(json), Err(CatalogError::DuplicateId(id)) if id == "1"));
    }

    #[test]
    fn suggests_same_author_first_never_an_ordered_or_sold_out_book() {
        let catalog = Catalog::embedded();
        let ids: Vec<&str> = catalog.suggest(&["4", "1"], 8).iter().map(|b| b.id.as_str()).collect();
        // Collins and Yarros titles first, in catalog order ("11" is sold out), then Red
        // Queen, which shares all three genres, before the others sharing two.
        assert_eq!(ids, ["2", "3", "5", "6", "10", "12", "16", "7"]);
        assert!(!ids.contains(&"4") && !ids.contains(&"1") && !ids.contains(&"11"));
    }

    #[test]
    fn suggests_by_genre_when_the_author_has_nothing_else() {
        let catalog = Catalog::embedded();
        let ids: Vec<&str> = catalog.suggest(&["22"], 3).iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["23"], "only Project Hail Mary shares Dune's genre");
    }

    #[test]
    fn suggestions_are_deterministic() {
        let catalog = Catalog::embedded();
        assert_eq!(catalog.suggest(&["7"], 3), catalog.suggest(&["7"], 3));
    }
}
