//! Raw HTTP/1.1 request strings (what wrk scripts return from `request()` and build with
//! `wrk.format`) parsed into real requests. Several requests concatenated in one string —
//! wrk's pipelining idiom — become several requests, in order.
//!
//! Used by `script` (per request, or once for a static request).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};

/// One parsed request, cheap to turn into a hyper request again and again.
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: Method,
    uri: Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
    /// The request exactly as the script wrote it (what goes on the wire over HTTP/1.1).
    wire: Bytes,
}

impl RawRequest {
    /// A hyper request with these parts.
    pub fn to_request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// The request's bytes as the script wrote them: over HTTP/1.1 they go on the wire
    /// unchanged, as wrk sends them.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// Whether it is a HEAD request (its response has no body).
    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }
}

/// Parses every request in `raw`; the error says what is wrong with which one.
pub fn parse(raw: &[u8]) -> Result<Vec<RawRequest>, String> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err(format!(
                    "request {} is incomplete (no blank line after its headers)",
                    out.len() + 1
                ))
            }
            Err(e) => {
                return Err(format!(
                    "request {} is not valid HTTP/1.1: {e}",
                    out.len() + 1
                ))
            }
        };
        let method = Method::from_bytes(req.method.unwrap_or("GET").as_bytes())
            .map_err(|e| e.to_string())?;
        let uri: Uri = req
            .path
            .unwrap_or("/")
            .parse()
            .map_err(|e| format!("path: {e}"))?;
        let mut map = hyper::HeaderMap::new();
        let mut len = 0usize;
        for h in req.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|e| format!("header {}: {e}", h.name))?;
            if name == hyper::header::CONTENT_LENGTH {
                len = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| "Content-Length is not a number".to_string())?;
            }
            let value =
                HeaderValue::from_bytes(h.value).map_err(|e| format!("header {}: {e}", h.name))?;
            map.append(name, value);
        }
        let body_end = n + len;
        if rest.len() < body_end {
            return Err(format!(
                "request {}: Content-Length {len} but only {} body bytes follow",
                out.len() + 1,
                rest.len() - n
            ));
        }
        out.push(RawRequest {
            method,
            uri,
            headers: map,
            body: Bytes::copy_from_slice(&rest[n..body_end]),
            wire: Bytes::copy_from_slice(&rest[..body_end]),
        });
        rest = &rest[body_end..];
    }
    if out.is_empty() {
        return Err("empty request string".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_pipelined() {
        let one = parse(b"POST /a?b=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!(one.len(), 1);
        let r = one[0].to_request();
        assert_eq!(
            (r.method().as_str(), r.uri().to_string()),
            ("POST", "/a?b=1".to_string())
        );
        let three = parse(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let paths: Vec<String> = three
            .iter()
            .map(|r| r.to_request().uri().to_string())
            .collect();
        assert_eq!(paths, ["/1", "/2", "/3"]);
        assert!(parse(b"nonsense").is_err());
        assert!(parse(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").is_err());
    }
}
