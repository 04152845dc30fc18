# Opt-in, not part of `make test`: real n8n (2.41.1 on Node 24) runs the workflows in integrations/n8n/
# against the local stack. The first run installs n8n and Node 24 from npm into
# $(TRIAGE_N8N_CACHE) (default ${XDG_CACHE_HOME:-~/.cache}/triage-n8n; ~3 GB, several minutes); later runs
# reuse it. See integrations/n8n/README.md.
.PHONY: test-n8n

test-n8n: $(STAMP)  ## opt-in: real n8n posts tickets/alerts through the local stack (installs n8n once)
	$(PY) tools/n8n_e2e.py
