# The toneflow image used by docker-compose.yml (worker and trainer).
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
# torch first, pinned: the default PyPI build (CUDA on x86_64) so the trainer can use a GPU.
RUN pip install "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY toneflow ./toneflow
COPY foundation ./foundation
COPY schemas ./schemas
COPY teacher ./teacher
COPY streams ./streams
COPY warehouse ./warehouse
COPY trainer ./trainer
COPY editor ./editor
COPY serving ./serving
COPY console ./console
RUN pip install .
VOLUME /data
