"""From-scratch character-level GPT on Tiny Shakespeare.

Data flow: text -> tokenizer (ids) -> dataset (random windows) -> model -> train (checkpoint) -> generate (text).
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "shakespeare"
DATA_DIR = PACKAGE_DIR / "data"
MODELS_DIR = PACKAGE_DIR / "models"
LOGS_DIR = REPO_ROOT / "logs"
