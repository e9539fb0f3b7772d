//! A server that is not vCenter (a proxy's HTML page, an endless body) gets an error that
//! names the URL and says what the answer looked like, read within the response limit: never
//! a panic, never the whole body in memory. Real TCP on loopback, a few lines of HTTP.

use std::io::{Read, Write};
use std::net::TcpListener;

use labsync::vsphere::{Client, Error, Options, Secret, Target, TlsPolicy};

/// Serves `answer` (headers and body) to every connection; returns the `/sdk` URL.
fn serve(answer: Vec<u8>, body_repeats: usize, chunk: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/sdk", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&answer);
                for _ in 0..body_repeats {
                    if s.write_all(chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn target(url: &str) -> Target {
    Target {
        url: url.into(),
        username: "u".into(),
        password: Secret::new("p"),
        tls: TlsPolicy::default(),
    }
}

#[tokio::test]
async fn a_proxy_page_is_named_as_html_with_the_url() {
    let body = "<!DOCTYPE html><html><head><title>Corporate proxy: sign in</title></head></html>";
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let url = serve(answer.into_bytes(), 0, b"");
    let err = Client::connect(&target(&url), Options::default())
        .await
        .expect_err("not vCenter");
    assert!(matches!(err, Error::NotSoap { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains("an HTML page titled \"Corporate proxy: sign in\""),
        "{text}"
    );
}

#[tokio::test]
async fn an_answer_past_the_limit_is_refused_before_it_is_read_whole() {
    // 64 MiB announced and sent in 64 KiB chunks; the limit is 1 MiB.
    let chunk: &'static [u8] = Box::leak(vec![b'x'; 65536].into_boxed_slice());
    let answer = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>"
        .to_string();
    let url = serve(answer.into_bytes(), 1024, chunk);
    let options = Options {
        max_response_bytes: 1 << 20,
        ..Options::default()
    };
    let err = Client::connect(&target(&url), options)
        .await
        .expect_err("too large");
    assert!(
        matches!(err, Error::TooLarge { limit_mb: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("LABSYNC_MAX_RESPONSE_MB"), "{err}");
}
