//! RNOKPP, Ukraine's taxpayer registration number: the citizen identifier Trembita's registries
//! exchange. Ten digits, the last a check digit over the first nine.

/// Whether `s` is ten digits with the right check digit.
pub fn valid(s: &str) -> bool {
    let d: Vec<i64> = s.bytes().map(|b| i64::from(b.wrapping_sub(b'0'))).collect();
    d.len() == 10 && d.iter().all(|x| (0..10).contains(x)) && check_digit(&d[..9]) == d[9]
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
    }
}
