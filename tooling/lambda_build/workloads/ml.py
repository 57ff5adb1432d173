"""ml-libraries workload: train, evaluate, persist and reload the models Predictions uses."""

import os
import tempfile


def run(params):
    import joblib
    import numpy as np
    import scipy
    import scipy.linalg
    import scipy.sparse
    import sklearn
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 6))
    target = 3 * features[:, 0] - 2 * features[:, 1] ** 2 + np.sin(features[:, 2]) + rng.normal(scale=0.1, size=2000)
    train, test = slice(0, 1600), slice(1600, None)

    model = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(features[train], target[train])
    mae = mean_absolute_error(target[test], model.predict(features[test]))
    baseline = mean_absolute_error(target[test], np.full(400, target[train].mean()))
    assert mae < 0.5 * baseline, (mae, baseline)

    counts = rng.poisson(np.exp(0.5 * features[:, 0]))  # the loss Predictions trains with
    poisson = HistGradientBoostingRegressor(loss="poisson", max_iter=30, random_state=0).fit(features[train], counts[train])
    assert (poisson.predict(features[test]) > 0).all()
    upper = HistGradientBoostingRegressor(loss="quantile", quantile=0.9, max_iter=30, random_state=0)
    share_below = float(np.mean(counts[test] <= upper.fit(features[train], counts[train]).predict(features[test])))
    assert share_below > 0.75, share_below  # a P90 forecast covers about 90% of the held-out counts

    ridge = Ridge(alpha=1.0).fit(features[train], target[train])  # scipy.linalg through scipy's OpenBLAS
    assert np.isfinite(ridge.coef_).all()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.joblib")
        joblib.dump({"model": model, "ridge": ridge}, path, compress=3)
        restored = joblib.load(path)
    assert np.array_equal(restored["model"].predict(features[test]), model.predict(features[test]))

    sparse = scipy.sparse.random(50, 50, density=0.1, random_state=0, format="csr") + scipy.sparse.eye(50)
    assert np.allclose(scipy.linalg.lu_factor(sparse.toarray())[0].shape, (50, 50))
    blas = sorted({info.get("internal_api", "?") for info in threadpool_info()})
    return {
        "mae": round(float(mae), 4),
        "baseline_mae": round(float(baseline), 4),
        "p90_coverage": round(share_below, 3),
        "blas": blas,
        "sklearn": sklearn.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }
