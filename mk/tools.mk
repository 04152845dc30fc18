# Lint tools whose dependencies would clash with the application's pins live in their own venv.
# tests/terraform/test_checkov.py builds the same venv (same marker file) when it is missing.
TOOLS_VENV ?= .venv-tools
TOOLS_PYTHON ?= python3

.PHONY: tools checkov terraform-fmt terraform-fmt-check

tools: $(TOOLS_VENV)/.installed

$(TOOLS_VENV)/.installed: tools/checkov-requirements.txt
	rm -rf $(TOOLS_VENV)
	$(TOOLS_PYTHON) -m venv $(TOOLS_VENV)
	printf '# tool venv (mk/tools.mk): ignored by git and ruff\n*\n' > $(TOOLS_VENV)/.gitignore
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	cp tools/checkov-requirements.txt $@

checkov: tools
	$(TOOLS_VENV)/bin/checkov --directory terraform --framework terraform --skip-download --compact --quiet

terraform-fmt:
	terraform fmt -recursive terraform/

terraform-fmt-check:
	terraform fmt -check -recursive terraform/
