//! Random numbers: `RND` and `RNDN`, drawn from the call context's generator, which the
//! evaluator seeds from the row key and the equation so that a recalculation repeats them.

use crate::lang::function::{CallCx, Function};
use crate::lang::value::Value;

use super::operand::{num, wrong, Res};

/// The random functions.
pub(super) static FUNCTIONS: &[Function] = &[
    entry!("RND", [], [], Propagate, rnd),
    entry!("RNDN", [], [N], Propagate, rndn),
];

/// Uniform in [0, 1).
fn rnd(_: &[Value], cx: &mut CallCx) -> Res {
    Ok(Value::Num(cx.rng.next_f64()))
}

/// Normal with mean 0 and standard deviation a (Box–Muller, one draw of two uniforms);
/// a negative a is invalid, a = 0 gives 0.
fn rndn(a: &[Value], cx: &mut CallCx) -> Res {
    let sd = num(&a[0], "RNDN: expects a number")?;
    if sd < 0.0 {
        return Err(wrong("RNDN: the standard deviation a is negative"));
    }
    let u1 = 1.0 - cx.rng.next_f64(); // (0, 1], so ln is finite
    let u2 = cx.rng.next_f64();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    Ok(Value::num(sd * z))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_invalid, call, call_cx, e, n, ns, s};
    use crate::lang::function::CallCx;
    use crate::lang::value::{Reason, Value};

    fn draws(name: &str, ops: &[Value], seed: u64, count: usize) -> Vec<f64> {
        let mut cx = CallCx::new(seed);
        (0..count)
            .map(|_| {
                let v = call_cx(name, ops, &mut cx);
                v.as_num().unwrap_or_else(|| panic!("{name} gave {v:?}"))
            })
            .collect()
    }

    #[test]
    fn reproducible_per_seed() {
        assert_eq!(draws("RND", &[], 7, 5), draws("RND", &[], 7, 5));
        assert_ne!(draws("RND", &[], 7, 5), draws("RND", &[], 8, 5));
        assert_eq!(
            draws("RNDN", &[n(2.0)], 7, 5),
            draws("RNDN", &[n(2.0)], 7, 5)
        );
        assert_ne!(
            draws("RNDN", &[n(2.0)], 7, 5),
            draws("RNDN", &[n(2.0)], 8, 5)
        );
        let v = draws("RND", &[], 7, 2);
        assert_ne!(v[0], v[1], "successive draws differ");
    }

    #[test]
    fn rnd_is_uniform_in_unit_interval() {
        let v = draws("RND", &[], 3, 20_000);
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let low = v.iter().filter(|x| **x < 0.1).count();
        assert!((1_800..2_200).contains(&low), "{low} draws below 0.1");
    }

    #[test]
    fn rndn_has_mean_zero_and_deviation_a() {
        let v = draws("RNDN", &[n(3.0)], 5, 20_000);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 3.0).abs() < 0.1, "sd {}", var.sqrt());
        let within = v.iter().filter(|x| x.abs() < 3.0).count() as f64 / v.len() as f64;
        assert!((within - 0.6827).abs() < 0.02, "{within} within one sd");
    }

    #[test]
    fn rndn_edges() {
        assert_eq!(call("RNDN", &[n(0.0)]), n(0.0));
        assert_eq!(call("RNDN", &[s("x")]), e(Reason::NotANumber));
        assert_invalid(call("RNDN", &[n(-1.0)]), "RNDN");
        assert_invalid(call("RNDN", &[ns(&[1.0])]), "RNDN");
    }
}
