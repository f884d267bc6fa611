"""What is measured: critics, originality, recognizability, the human points, distance to human, maps, figures.

Public API (import from the modules; this file imports nothing so that `humanlike --help` stays fast):
    evaluation.preprocess   preprocess(images, size=, threshold=)            the one image pipeline of the critics
    evaluation.metrics      originality, feature_normalizer, evaluation_tasks, per_sample_recognizability,
                            curve_by_originality, distance_to_human         pure functions (SPEC part 0, section 5)
    evaluation.fit          parametric_fit                                  LM's curve fit (SPEC section 6)
    evaluation.critics      load_critics(dataset or dir) -> Critics, save_critics
    evaluation.critic_training  RECIPES, train_critics                      SPEC sections 5 and 8
    evaluation.evaluate     evaluate_samples(samples, exemplars, critics, human_point) -> dict
    evaluation.human        human_points(critics, imageset, data_dir=)      the human point(s), cached per critics
    evaluation.run_eval     evaluate_run(run_dir, ...)                      `humanlike evaluate`
    evaluation.figures      figure3(results, out), figure2(exemplars, samples, out)
    evaluation.maps         feature_importance_maps, spearman_compare       SPEC section 7
"""
