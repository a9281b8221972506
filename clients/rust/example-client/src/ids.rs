//! Request ids: 128 random bits from the operating system, so that ids are unique across sockets,
//! reconnects and client restarts without any state (the retry cache keys on them, spec RTY).

use stui_protocol::RequestId;

/// A fresh request id: 32 lower-case hex digits.
pub fn new_request_id() -> RequestId {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the operating system's random generator failed");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    RequestId::new(hex).expect("32 hex digits are a valid request id")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| super::new_request_id().into_string()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
