;; Cheapest bid wins: the auction score is the cost component alone
;; (reputation and estimated time are ignored). Ties still go to the lowest
;; node id, as with the built-in scorer.
;; ABI: auction_score(cost_bp: i64, rep_bp: i64, time_bp: i64) -> i64, 0..=1e12
(module
  (func (export "auction_score") (param $cost i64) (param $rep i64) (param $time i64) (result i64)
    (local.get $cost)))
