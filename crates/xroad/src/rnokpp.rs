//! RNOKPP, Ukraine's taxpayer registration number: the citizen identifier Trembita's registries
//! exchange. Ten digits, the last a check digit over the first nine.

/// Whether `s` is ten digits with the right check digit.
pub fn valid(s: &str) -> bool {
    s.len() == 10 && s.is_ascii() && complete(&s[..9]).is_some_and(|c| c == s)
}

/// The RNOKPP whose first nine digits are `first9`: its check digit appended. `None` unless
/// `first9` is nine ASCII digits.
pub fn complete(first9: &str) -> Option<String> {
    if first9.len() != 9 || !first9.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: Vec<i64> = first9.bytes().map(|b| i64::from(b - b'0')).collect();
    Some(format!("{first9}{}", check_digit(&digits)))
}

/// The State Tax Service's control digit: weights -1 5 7 9 4 6 10 5 7, sum mod 11 mod 10.
pub fn check_digit(first9: &[i64]) -> i64 {
    const W: [i64; 9] = [-1, 5, 7, 9, 4, 6, 10, 5, 7];
    let sum: i64 = first9.iter().zip(W).map(|(d, w)| d * w).sum();
    sum.rem_euclid(11) % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        let first9 = [3, 4, 5, 6, 7, 8, 9, 0, 1];
        let c = check_digit(&first9);
        let good = format!("345678901{c}");
        assert!(valid(&good));
        let bad = format!("345678901{}", (c + 1) % 10);
        assert!(!valid(&bad));
        assert!(!valid("12345") && !valid("34567890ab") && !valid("") && !valid("3456789012345"));
        assert!(!valid("34567890é"));
        assert_eq!(complete("345678901"), Some(good));
        assert_eq!(complete("-34567890"), None);
        assert_eq!(complete("3456789012"), None);
    }
}
