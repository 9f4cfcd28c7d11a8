//! The client-side-only build of the page (Trunk): the same `App`, mounted in the
//! browser, calling the real server's functions at `BOOKSTORE_SERVER_URL` (read at
//! build time; `http://127.0.0.1:8080` by default).

const SERVER_URL: &str = match option_env!("BOOKSTORE_SERVER_URL") {
    Some(url) => url,
    None => "http://127.0.0.1:8080",
};

fn main() {
    console_error_panic_hook::set_once();
    leptos::server_fn::client::set_server_url(SERVER_URL);
    leptos::mount::mount_to_body(app::App);
}
