#!/usr/bin/env bash
# env: torch
# Which scheme is torch's nn.Linear default, kaiming_uniform_(a=sqrt(5))?
initspec identify --target "torch.nn.init:kaiming_uniform_(a=2.23606797749979)" --convention torch
