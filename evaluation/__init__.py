"""What is measured: critics, originality, recognizability, the human points, distance to human, maps, figures.

Public API (import from the modules; this file imports nothing so that `humanlike --help` stays fast):
    evaluation.preprocess   preprocess(images, size=, threshold=)            the one image pipeline of the critics
    evaluation.metrics      originality, feature_normalizer, evaluation_tasks, per_sample_recognizability,
                            curve_by_originality; N_WAY, TASKS_PER_CLASS,   pure functions (SPEC part 0, section 5)
                            TASK_SEED (the recognizability protocol)
    evaluation.distance     distance_to_human, axis_deviations             the one distance (numpy only; the sweep's
                                                                            objective and the replay use it)
    evaluation.ceilings     stage_ceilings                                  what each stage of a trial can reach
    evaluation.references   reference sets (copy, jitter, blur, ...)        where the critics must put known answers
    evaluation.fit          parametric_fit                                  LM's curve fit (SPEC section 6)
    evaluation.critics      load_critics(dataset or dir) -> Critics, save_critics
    evaluation.critic_training  RECIPES, train_critics                      SPEC sections 5 and 8
    evaluation.evaluate     evaluate_samples(samples, exemplars, critics, human_point) -> dict
    evaluation.human        human_points(critics, imageset, data_dir=)      the human point(s), cached per critics
    evaluation.run_eval     evaluate_run(run_dir, ...)                      `humanlike evaluate`
    evaluation.figures      figure3 / draw_figure3, figure2 / draw_figure2,  the one Figure 3 and Figure 2 (the sweep
                            setting_colours                                 report draws with them too)
    evaluation.maps         feature_importance_maps, spearman_compare       SPEC section 7
"""
