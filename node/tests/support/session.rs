//! A panel user's browser session for tests of the admin pages: log in with the form, read the
//! CSRF token, post forms and uploads.

use std::net::SocketAddr;

use super::http::{exchange, exchange_bytes, header};

/// A browser session: its cookie and CSRF token.
pub struct Session {
    pub http: SocketAddr,
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    /// Logs in with the form; `None` when the login is refused.
    pub fn login(http: SocketAddr, name: &str, password: &str) -> Option<Session> {
        let (status, h, _) = exchange(
            http,
            "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded",
            &format!("name={name}&password={password}&next=%2F"),
        );
        if status != 303 {
            return None;
        }
        let cookie = header(&h, "set-cookie")?.split(';').next()?.to_owned();
        Some(Session {
            http,
            cookie,
            csrf: String::new(),
        })
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = exchange(
            self.http,
            &format!("GET {path} HTTP/1.0\r\nCookie: {}", self.cookie),
            "",
        );
        (status, body)
    }

    /// Reads the CSRF token the page embeds in its forms.
    pub fn fetch_csrf(&mut self) {
        let (status, body) = self.get("/admin");
        assert_eq!(status, 200, "{body}");
        let marker = "name=\"csrf\" value=\"";
        let start = body.find(marker).expect("a csrf field") + marker.len();
        let len = body[start..].find('"').expect("end of the csrf value");
        self.csrf = body[start..start + len].to_owned();
    }

    /// Posts a form (the CSRF field added): (status, Location, body).
    pub fn post(&self, path: &str, form: &str) -> (u16, String, String) {
        let (status, h, body) = exchange(
            self.http,
            &format!(
                "POST {path} HTTP/1.0\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded",
                self.cookie
            ),
            &format!("csrf={}&{form}", self.csrf),
        );
        (
            status,
            header(&h, "location").unwrap_or("").to_owned(),
            body,
        )
    }

    /// Posts a `multipart/form-data` form with text `fields` and one file (field `file`),
    /// the CSRF token in the action's query as the upload form has it: (status, Location,
    /// body).
    pub fn upload(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        file: &[u8],
    ) -> (u16, String, String) {
        let boundary = "callfleet-test-boundary-7d1e";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend(file);
        body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
        let (status, h, body) = exchange_bytes(
            self.http,
            &format!(
                "POST {path}?csrf={} HTTP/1.0\r\nCookie: {}\r\nContent-Type: multipart/form-data; boundary={boundary}",
                self.csrf, self.cookie
            ),
            &body,
        );
        (
            status,
            header(&h, "location").unwrap_or("").to_owned(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// GET returning the body as bytes (audio).
    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = exchange_bytes(
            self.http,
            &format!("GET {path} HTTP/1.0\r\nCookie: {}", self.cookie),
            b"",
        );
        (status, body)
    }
}
