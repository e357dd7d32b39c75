# Nothing to set up: the pytest-t2ibias plugin registers itself when the package is installed, and every
# setting (model, scorer, images per prompt, thresholds) lives in pytest.ini.
#
# A fixture you may want here: the suite and the model are session fixtures (t2ibias_suite,
# t2ibias_generator, t2ibias_scorer, t2ibias_policy), so a helper of your own can build on them, e.g.
#
#     @pytest.fixture(scope="session")
#     def doctor_prompt(t2ibias_suite):
#         return t2ibias_suite.categories["doctor"].prompts[0]
#
# own_model/ overrides t2ibias_generator (and the suite, scorer and policy) in its own conftest.py: its
# tests gate a pipeline object built in memory (a fine-tune with fused LoRA weights) instead of the
# t2ibias_model of pytest.ini, in the same run; see docs/own-model.md.
