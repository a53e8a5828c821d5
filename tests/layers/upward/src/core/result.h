// Fixture only: never compiled.
#pragma once
