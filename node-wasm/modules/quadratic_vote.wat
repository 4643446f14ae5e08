;; Quadratic vote weight: weight = floor(sqrt(total_milli * 1000)) milli-units
;; plus 1000 (one vote) — i.e. 1 + sqrt(points), ignoring tags.
;; ABI: vote_weight(total_milli: i64, spec_milli: i64, tagged: i32) -> i64
(module
  (func (export "vote_weight") (param $total i64) (param $spec i64) (param $tagged i32) (result i64)
    (local $x i64) (local $r i64) (local $bit i64)
    ;; x = total_milli * 1000 (milli-points -> micro-points), clamped at 0
    (local.set $x (i64.mul (select (local.get $total) (i64.const 0) (i64.gt_s (local.get $total) (i64.const 0))) (i64.const 1000)))
    ;; integer sqrt by the bitwise method
    (local.set $r (i64.const 0))
    (local.set $bit (i64.const 0x4000000000000000))
    (block $done
      (loop $shrink
        (br_if $done (i64.le_u (local.get $bit) (local.get $x)))
        (local.set $bit (i64.shr_u (local.get $bit) (i64.const 2)))
        (br_if $done (i64.eqz (local.get $bit)))
        (br $shrink)))
    (block $end
      (loop $step
        (br_if $end (i64.eqz (local.get $bit)))
        (if (i64.ge_u (local.get $x) (i64.add (local.get $r) (local.get $bit)))
          (then
            (local.set $x (i64.sub (local.get $x) (i64.add (local.get $r) (local.get $bit))))
            (local.set $r (i64.add (i64.shr_u (local.get $r) (i64.const 1)) (local.get $bit))))
          (else
            (local.set $r (i64.shr_u (local.get $r) (i64.const 1)))))
        (local.set $bit (i64.shr_u (local.get $bit) (i64.const 2)))
        (br $step)))
    (i64.add (i64.const 1000) (local.get $r))))
