;; Flat tax: 5% of the reward (floor), whatever the configured rate.
;; ABI: tax(reward: i64, tax_bps: i64) -> i64, result must be in 0..=reward.
(module
  (func (export "tax") (param $reward i64) (param $bps i64) (result i64)
    (i64.div_u (i64.mul (local.get $reward) (i64.const 500)) (i64.const 10000))))
