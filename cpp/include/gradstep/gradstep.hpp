// gradstep/gradstep.hpp: every kernel family at once.
#pragma once

#include "adadelta.hpp"
#include "adagrad.hpp"
#include "adam.hpp"
#include "lbfgs.hpp"
#include "reduce.hpp"
#include "rmsprop.hpp"
#include "rprop.hpp"
#include "sgd.hpp"
